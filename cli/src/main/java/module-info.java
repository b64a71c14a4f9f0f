/** The {@code safepointkit} command line: {@code dump}, {@code run}, {@code compile} and {@code demo}. Exports nothing. */
module dev.safepointkit.cli {
    requires dev.safepointkit.stackmap;
    requires dev.safepointkit.host;
    requires dev.safepointkit.compile;
    requires dev.safepointkit.registry;
    requires dev.safepointkit.demo;
    requires info.picocli;

    // picocli fills the command objects' annotated fields by reflection.
    opens dev.safepointkit.cli to info.picocli;
}

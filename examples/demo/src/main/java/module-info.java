/** The demo: a copying collector built on gc-roots, and binary-trees on it. An example, not library API. */
module dev.safepointkit.demo {
    requires transitive dev.safepointkit.roots;
    requires transitive dev.safepointkit.host;
    requires dev.safepointkit.compile;
    requires transitive HdrHistogram;

    exports dev.safepointkit.demo;
}

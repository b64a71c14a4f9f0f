/**
 * Reads x86-64 {@code .eh_frame} call frame information: {@link dev.safepointkit.stackmap.dwarf.EhFrame}
 * parses and validates a relocated section (CIEs, FDEs, pointer encodings) and finds the FDE of a
 * PC; {@link dev.safepointkit.stackmap.dwarf.CfiRow#at} runs an FDE's program up to a PC and says
 * how to find the canonical frame address and where each register was saved. What it does not
 * support (DWARF expressions, register-in-register rules, 64-bit lengths) is refused with a
 * {@link dev.safepointkit.stackmap.dwarf.CfiFormatException} naming the record and opcode.
 */
package dev.safepointkit.stackmap.dwarf;

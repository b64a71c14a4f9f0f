; The runtime module of the README's `bin/safepointkit run --lazy --runtime` example: compiled
; once into its own object, and linked into every compile of prog.ll as available_externally,
; so that the optimizer may inline it.

define i64 @rt_mix(i64 %h, i64 %x) {
entry:
  %a = xor i64 %h, %x
  %b = mul i64 %a, 1099511628211   ; FNV-1a's 64-bit prime
  ret i64 %b
}

; The program of the README's `bin/safepointkit run --lazy` example: entry and the eleven steps
; it calls, each compiled on its first call (and rt_mix of runtime.ll inlined where the optimizer
; likes); unused is never called, so never compiled.

declare i64 @rt_mix(i64, i64)

define i64 @entry(i64 %n) {
entry:
  %h = call i64 @step1(i64 %n)
  %r = call i64 @rt_mix(i64 %h, i64 %n)
  ret i64 %r
}

define i64 @step1(i64 %x) {
entry:
  %h = call i64 @step2(i64 %x)
  %r = call i64 @rt_mix(i64 %h, i64 1)
  ret i64 %r
}

define i64 @step2(i64 %x) {
entry:
  %h = call i64 @step3(i64 %x)
  %r = call i64 @rt_mix(i64 %h, i64 2)
  ret i64 %r
}

define i64 @step3(i64 %x) {
entry:
  %h = call i64 @step4(i64 %x)
  %r = call i64 @rt_mix(i64 %h, i64 3)
  ret i64 %r
}

define i64 @step4(i64 %x) {
entry:
  %h = call i64 @step5(i64 %x)
  %r = call i64 @rt_mix(i64 %h, i64 4)
  ret i64 %r
}

define i64 @step5(i64 %x) {
entry:
  %h = call i64 @step6(i64 %x)
  %r = call i64 @rt_mix(i64 %h, i64 5)
  ret i64 %r
}

define i64 @step6(i64 %x) {
entry:
  %h = call i64 @step7(i64 %x)
  %r = call i64 @rt_mix(i64 %h, i64 6)
  ret i64 %r
}

define i64 @step7(i64 %x) {
entry:
  %h = call i64 @step8(i64 %x)
  %r = call i64 @rt_mix(i64 %h, i64 7)
  ret i64 %r
}

define i64 @step8(i64 %x) {
entry:
  %h = call i64 @step9(i64 %x)
  %r = call i64 @rt_mix(i64 %h, i64 8)
  ret i64 %r
}

define i64 @step9(i64 %x) {
entry:
  %h = call i64 @step10(i64 %x)
  %r = call i64 @rt_mix(i64 %h, i64 9)
  ret i64 %r
}

define i64 @step10(i64 %x) {
entry:
  %h = call i64 @step11(i64 %x)
  %r = call i64 @rt_mix(i64 %h, i64 10)
  ret i64 %r
}

define i64 @step11(i64 %x) {
entry:
  %r = call i64 @rt_mix(i64 -3750763034362895579, i64 %x)   ; FNV-1a's offset basis
  ret i64 %r
}

define i64 @unused(i64 %x) {
entry:
  ret i64 %x
}

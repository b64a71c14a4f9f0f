; The example's program, compiled at run time with the pass pipeline rewrite-statepoints-for-gc.
;
; Conventions a frontend follows for Safepoint Kit:
; - GC pointers are `ptr addrspace(1)`; every function that holds them is gc "statepoint-example",
;   so the pass turns each of its calls into a statepoint and reloads every GC pointer live
;   across one from the slot the collector fixes.
; - Every function gets the mutator's context block (dev.safepointkit.roots.Mutator) as %ctx:
;   poll word at 0, entry slot at 8.
; - The function Java calls stores llvm.addressofreturnaddress() at %ctx + 8 first: the walk ends
;   there.
; - At a poll site the code loads the poll word and, when it is nonzero, calls @poll, which is not
;   GC-managed, keeps a frame pointer, and hands Java the slot of its return address.
;
; Heap objects are boxes of two words, {i64 header, i64 value}, allocated by Java (spk_alloc).

declare void @spk_poll(ptr, ptr)
declare ptr addrspace(1) @spk_alloc(ptr, i64)
declare ptr @llvm.addressofreturnaddress.p0()

define void @poll(ptr %ctx) noinline "frame-pointer"="all" {
entry:
  %slot = call ptr @llvm.addressofreturnaddress.p0()
  notail call void @spk_poll(ptr %ctx, ptr %slot)
  ret void
}

; Boxes %x and %y, adds them after a poll (where the collector moves both boxes), and adds %x
; once more, read through this frame's own pointer to the first box: 2x + y.
define i64 @entry(ptr %ctx, i64 %x, i64 %y) gc "statepoint-example" {
entry:
  %slot = call ptr @llvm.addressofreturnaddress.p0()
  %entry.slot = getelementptr i8, ptr %ctx, i64 8
  store ptr %slot, ptr %entry.slot, align 8
  %a = call ptr addrspace(1) @spk_alloc(ptr %ctx, i64 %x)
  %b = call ptr addrspace(1) @spk_alloc(ptr %ctx, i64 %y)
  %sum = call i64 @sum_after_poll(ptr %ctx, ptr addrspace(1) %a, ptr addrspace(1) %b)
  %a.value = getelementptr i8, ptr addrspace(1) %a, i64 8
  %again = load i64, ptr addrspace(1) %a.value, align 8
  %result = add i64 %sum, %again
  ret i64 %result
}

; %a and %b are live across the poll: the collector moves both boxes and fixes the slots that
; hold them, in this frame and in entry's.
define i64 @sum_after_poll(ptr %ctx, ptr addrspace(1) %a, ptr addrspace(1) %b) gc "statepoint-example" {
entry:
  %word = load atomic i64, ptr %ctx monotonic, align 8
  %stop = icmp ne i64 %word, 0
  br i1 %stop, label %poll, label %body
poll:
  call void @poll(ptr %ctx)
  br label %body
body:
  %a.value = getelementptr i8, ptr addrspace(1) %a, i64 8
  %b.value = getelementptr i8, ptr addrspace(1) %b, i64 8
  %va = load i64, ptr addrspace(1) %a.value, align 8
  %vb = load i64, ptr addrspace(1) %b.value, align 8
  %sum = add i64 %va, %vb
  ret i64 %sum
}

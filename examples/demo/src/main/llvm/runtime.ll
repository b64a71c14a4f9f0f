; The demo runtime's side of the poll protocol (see dev.safepointkit.roots.Mutator): small
; functions that JIT code calls through statepoints when it must stop or needs memory. Each keeps
; a frame pointer, so its prologue leaves the polling frame's RBP just below the return-address
; slot it hands to Java, and saves every other callee-saved register too (an empty asm clobbers
; them): the polling frame's values of RBX, R12-R15, which code compiled with
; -fixup-allow-gcptr-in-csr keeps GC pointers in, are then in this function's frame, where its CFI
; says, and its epilogue restores what a collector wrote there. The functions that hand Java a
; slot are GC-managed only so that their calls out are statepoints: their stack map records are
; where the registry keeps the unwind plans that say where those saves are (DemoRuntime reads them,
; SafepointCoordinator.pollSaves). The calls into Java are never tail calls: the return-address
; slot must still be this function's when Java walks the stack.
;
; Context block: 0 poll word, 8 entry slot, 32 allocation-buffer top, 40 allocation-buffer end.

declare void @spk_poll(ptr, ptr)
declare i64 @spk_alloc(ptr, ptr, i64, i64)
declare void @spk_collect(ptr, ptr)
declare void @spk_bad_object(ptr, i64, i64)
declare void @spk_exit(ptr, ptr)
declare void @spk_return(ptr)
declare i64 @spk_nested(ptr, i32)
declare ptr @llvm.addressofreturnaddress.p0()

; Park while a stop is in progress (or collect, in the stress mode).
define void @rt_poll(ptr %ctx) noinline "frame-pointer"="all" gc "statepoint-example" {
entry:
  %slot = call ptr @llvm.addressofreturnaddress.p0()
  call void asm sideeffect "", "~{rbx},~{r12},~{r13},~{r14},~{r15},~{dirflag},~{fpsr},~{flags}"() "gc-leaf-function"
  notail call void @spk_poll(ptr %ctx, ptr %slot)
  ret void
}

; Allocates an object of %size bytes whose header is %header; may collect first.
define ptr addrspace(1) @rt_alloc(ptr %ctx, i64 %size, i64 %header) noinline "frame-pointer"="all" gc "statepoint-example" {
entry:
  %slot = call ptr @llvm.addressofreturnaddress.p0()
  call void asm sideeffect "", "~{rbx},~{r12},~{r13},~{r14},~{r15},~{dirflag},~{fpsr},~{flags}"() "gc-leaf-function"
  %address = notail call i64 @spk_alloc(ptr %ctx, ptr %slot, i64 %size, i64 %header)
  %object = inttoptr i64 %address to ptr addrspace(1)
  ret ptr addrspace(1) %object
}

; The allocation fast path: bumps the thread's buffer, else calls rt_alloc (which refills it and
; may collect). Small, so the compile pipeline inlines it into binarytrees.ll's callers, where
; rewrite-statepoints-for-gc makes the slow call one of their statepoints; GC-managed, so its own
; compiled copy has a stack map at that call too.
define ptr addrspace(1) @rt_alloc_fast(ptr %ctx, i64 %size, i64 %header) gc "statepoint-example" {
entry:
  %top.p = getelementptr i8, ptr %ctx, i64 32
  %end.p = getelementptr i8, ptr %ctx, i64 40
  %top = load i64, ptr %top.p, align 8
  %end = load i64, ptr %end.p, align 8
  %next = add i64 %top, %size
  %fits = icmp ule i64 %next, %end
  br i1 %fits, label %fast, label %slow, !prof !0
fast:
  store i64 %next, ptr %top.p, align 8
  %object.fast = inttoptr i64 %top to ptr addrspace(1)
  store i64 %header, ptr addrspace(1) %object.fast, align 8
  ret ptr addrspace(1) %object.fast
slow:
  %object.slow = call ptr addrspace(1) @rt_alloc(ptr %ctx, i64 %size, i64 %header)
  ret ptr addrspace(1) %object.slow
}

; Collects now.
define void @rt_collect(ptr %ctx) noinline "frame-pointer"="all" gc "statepoint-example" {
entry:
  %slot = call ptr @llvm.addressofreturnaddress.p0()
  call void asm sideeffect "", "~{rbx},~{r12},~{r13},~{r14},~{r15},~{dirflag},~{fpsr},~{flags}"() "gc-leaf-function"
  notail call void @spk_collect(ptr %ctx, ptr %slot)
  ret void
}

; Reports an object whose header is not what the code expected (a stale or missed root reads
; the collector's poison there).
define void @rt_bad_object(ptr %ctx, i64 %address, i64 %header) noinline "frame-pointer"="all" {
entry:
  notail call void @spk_bad_object(ptr %ctx, i64 %address, i64 %header)
  ret void
}

; An exit (dev.safepointkit.roots.Mutator: runs, exits and entries): leaves the JIT run for Java,
; which enters JIT code again and builds and checks a tree of %depth there, in a run of its own;
; then returns into the run it left, once no stop is in progress. Returns the inner check.
define i64 @rt_nested_trees(ptr %ctx, i32 %depth) noinline "frame-pointer"="all" gc "statepoint-example" {
entry:
  %slot = call ptr @llvm.addressofreturnaddress.p0()
  call void asm sideeffect "", "~{rbx},~{r12},~{r13},~{r14},~{r15},~{dirflag},~{fpsr},~{flags}"() "gc-leaf-function"
  notail call void @spk_exit(ptr %ctx, ptr %slot)
  %check = notail call i64 @spk_nested(ptr %ctx, i32 %depth)
  notail call void @spk_return(ptr %ctx)
  ret i64 %check
}

!0 = !{!"branch_weights", i32 1000, i32 1}

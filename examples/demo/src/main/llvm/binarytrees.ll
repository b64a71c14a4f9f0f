; binary-trees (the Benchmarks Game program) for the demo's copying collector. Written without
; statepoints: the compile pipeline (regen-fixtures.sh runs it through `safepointkit compile`, the
; demo's --compile at run time) inlines runtime.ll's allocation fast path, then runs
; rewrite-statepoints-for-gc over it, which turns
; every call in these "statepoint-example" functions into a statepoint and relocates every heap
; pointer live across one.
;
; Every function takes the mutator's context block (dev.safepointkit.roots.Mutator): poll word at
; 0, entry slot at 8, allocation buffer top at 32 and end at 40. A tree node is three words:
; header (2 pointer fields << 32 | 24 bytes), left, right; a leaf has two nulls.

declare void @rt_poll(ptr)
declare ptr addrspace(1) @rt_alloc_fast(ptr, i64, i64)
declare void @rt_bad_object(ptr, i64, i64)
declare i64 @rt_nested_trees(ptr, i32)
declare ptr @llvm.addressofreturnaddress.p0()

define ptr addrspace(1) @bottom_up_tree(ptr %ctx, i32 %depth) gc "statepoint-example" {
entry:
  %word = load atomic i64, ptr %ctx monotonic, align 8
  %stop = icmp ne i64 %word, 0
  br i1 %stop, label %poll, label %body, !prof !0
poll:
  call void @rt_poll(ptr %ctx)
  br label %body
body:
  %leaf = icmp sle i32 %depth, 0
  br i1 %leaf, label %alloc, label %inner
inner:
  %d1 = sub nsw i32 %depth, 1
  %l = call ptr addrspace(1) @bottom_up_tree(ptr %ctx, i32 %d1)
  %r = call ptr addrspace(1) @bottom_up_tree(ptr %ctx, i32 %d1)
  br label %alloc
alloc:
  %left = phi ptr addrspace(1) [ null, %body ], [ %l, %inner ]
  %right = phi ptr addrspace(1) [ null, %body ], [ %r, %inner ]
  ; The runtime's allocation fast path (runtime.ll), inlined here by the compile pipeline.
  %node = call ptr addrspace(1) @rt_alloc_fast(ptr %ctx, i64 24, i64 8589934616)
  %left.p = getelementptr i8, ptr addrspace(1) %node, i64 8
  store ptr addrspace(1) %left, ptr addrspace(1) %left.p, align 8
  %right.p = getelementptr i8, ptr addrspace(1) %node, i64 16
  store ptr addrspace(1) %right, ptr addrspace(1) %right.p, align 8
  ret ptr addrspace(1) %node
}

; Nodes in the tree; checks each node's header, so a pointer into poisoned memory is reported.
define i64 @item_check(ptr %ctx, ptr addrspace(1) %tree) gc "statepoint-example" {
entry:
  %word = load atomic i64, ptr %ctx monotonic, align 8
  %stop = icmp ne i64 %word, 0
  br i1 %stop, label %poll, label %body, !prof !0
poll:
  call void @rt_poll(ptr %ctx)
  br label %body
body:
  %header = load i64, ptr addrspace(1) %tree, align 8
  %ok = icmp eq i64 %header, 8589934616
  br i1 %ok, label %node, label %bad, !prof !1
bad:
  %address = ptrtoint ptr addrspace(1) %tree to i64
  call void @rt_bad_object(ptr %ctx, i64 %address, i64 %header)
  ret i64 0
node:
  %left.p = getelementptr i8, ptr addrspace(1) %tree, i64 8
  %left = load ptr addrspace(1), ptr addrspace(1) %left.p, align 8
  %is.leaf = icmp eq ptr addrspace(1) %left, null
  br i1 %is.leaf, label %leaf, label %inner
leaf:
  ret i64 1
inner:
  %right.p = getelementptr i8, ptr addrspace(1) %tree, i64 16
  %right = load ptr addrspace(1), ptr addrspace(1) %right.p, align 8
  %cl = call i64 @item_check(ptr %ctx, ptr addrspace(1) %left)
  %cr = call i64 @item_check(ptr %ctx, ptr addrspace(1) %right)
  %sum = add i64 %cl, %cr
  %total = add i64 %sum, 1
  ret i64 %total
}

; Entry from Java: builds and checks %iterations trees of %depth; returns the sum of the checks.
define i64 @trees(ptr %ctx, i32 %depth, i64 %iterations) gc "statepoint-example" {
entry:
  %slot = call ptr @llvm.addressofreturnaddress.p0()
  %entry.p = getelementptr i8, ptr %ctx, i64 8
  store ptr %slot, ptr %entry.p, align 8
  %any = icmp sgt i64 %iterations, 0
  br i1 %any, label %loop, label %exit
loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %check = phi i64 [ 0, %entry ], [ %check.next, %loop ]
  %tree = call ptr addrspace(1) @bottom_up_tree(ptr %ctx, i32 %depth)
  %c = call i64 @item_check(ptr %ctx, ptr addrspace(1) %tree)
  %check.next = add i64 %check, %c
  %i.next = add i64 %i, 1
  %more = icmp slt i64 %i.next, %iterations
  br i1 %more, label %loop, label %exit
exit:
  %result = phi i64 [ 0, %entry ], [ %check.next, %loop ]
  ret i64 %result
}

; Entry from Java, the nested variant of trees: each iteration builds a tree, then, with that tree
; live in this run's frame, has Java build and check another in a run of its own (collections
; happen there, and move this run's tree), and then checks its own tree. Returns the sum of its
; own checks; Java checks the inner ones.
define i64 @trees_nested(ptr %ctx, i32 %depth, i64 %iterations) gc "statepoint-example" {
entry:
  %slot = call ptr @llvm.addressofreturnaddress.p0()
  %entry.p = getelementptr i8, ptr %ctx, i64 8
  store ptr %slot, ptr %entry.p, align 8
  %any = icmp sgt i64 %iterations, 0
  br i1 %any, label %loop, label %exit
loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %check = phi i64 [ 0, %entry ], [ %check.next, %loop ]
  %tree = call ptr addrspace(1) @bottom_up_tree(ptr %ctx, i32 %depth)
  %inner = call i64 @rt_nested_trees(ptr %ctx, i32 %depth)
  %c = call i64 @item_check(ptr %ctx, ptr addrspace(1) %tree)
  %check.next = add i64 %check, %c
  %i.next = add i64 %i, 1
  %more = icmp slt i64 %i.next, %iterations
  br i1 %more, label %loop, label %exit
exit:
  %result = phi i64 [ 0, %entry ], [ %check.next, %loop ]
  ret i64 %result
}

; Entry from Java: builds a tree of %depth and stores it in %handle, a root the collector updates.
define void @keep_tree(ptr %ctx, i32 %depth, ptr %handle) gc "statepoint-example" {
entry:
  %slot = call ptr @llvm.addressofreturnaddress.p0()
  %entry.p = getelementptr i8, ptr %ctx, i64 8
  store ptr %slot, ptr %entry.p, align 8
  %tree = call ptr addrspace(1) @bottom_up_tree(ptr %ctx, i32 %depth)
  store ptr addrspace(1) %tree, ptr %handle, align 8
  ret void
}

; Entry from Java: checks the tree kept in %handle.
define i64 @check_kept(ptr %ctx, ptr %handle) gc "statepoint-example" {
entry:
  %slot = call ptr @llvm.addressofreturnaddress.p0()
  %entry.p = getelementptr i8, ptr %ctx, i64 8
  store ptr %slot, ptr %entry.p, align 8
  %tree = load ptr addrspace(1), ptr %handle, align 8
  %c = call i64 @item_check(ptr %ctx, ptr addrspace(1) %tree)
  ret i64 %c
}

!0 = !{!"branch_weights", i32 1, i32 1000}
!1 = !{!"branch_weights", i32 1000, i32 1}

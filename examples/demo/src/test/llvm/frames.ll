; Programs for the demo collector's tests, with statepoints written by hand so that each frame
; holds exactly the kind of root under test: a spilled base pointer, a derived pointer walking
; through an array, gc-live allocas, and frames with dynamic allocas (walked through RBP).
; Each entry function first stores its return-address slot in the context block (offset 8).
; rt_collect stops the world and collects; rt_alloc may collect too. Objects are
; {header = pointer fields << 32 | size, words...}; a stale root reads poison (0xA5...) there.

declare token @llvm.experimental.gc.statepoint.p0(i64, i32, ptr, i32, i32, ...)
declare ptr addrspace(1) @llvm.experimental.gc.relocate.p1(token, i32, i32)
declare ptr addrspace(1) @llvm.experimental.gc.result.p1(token)
declare i64 @llvm.experimental.gc.result.i64(token)
declare ptr @llvm.addressofreturnaddress.p0()
declare void @rt_collect(ptr)
declare ptr addrspace(1) @rt_alloc(ptr, i64, i64)

; One object {16, value} kept across a collection; returns value, or -1 if its header is wrong.
define i64 @survives_collect(ptr %ctx, i64 %value) gc "statepoint-example" {
entry:
  %ra = call ptr @llvm.addressofreturnaddress.p0()
  %entry.p = getelementptr i8, ptr %ctx, i64 8
  store ptr %ra, ptr %entry.p, align 8
  %t0 = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 0, i32 0,
      ptr elementtype(ptr addrspace(1) (ptr, i64, i64)) @rt_alloc, i32 3, i32 0, ptr %ctx, i64 16, i64 16, i32 0, i32 0)
  %obj = call ptr addrspace(1) @llvm.experimental.gc.result.p1(token %t0)
  %field = getelementptr i8, ptr addrspace(1) %obj, i64 8
  store i64 %value, ptr addrspace(1) %field, align 8
  %t1 = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 1, i32 0,
      ptr elementtype(void (ptr)) @rt_collect, i32 1, i32 0, ptr %ctx, i32 0, i32 0) [ "gc-live"(ptr addrspace(1) %obj) ]
  %obj.r = call ptr addrspace(1) @llvm.experimental.gc.relocate.p1(token %t1, i32 0, i32 0)
  %header = load i64, ptr addrspace(1) %obj.r, align 8
  %ok = icmp eq i64 %header, 16
  %field.r = getelementptr i8, ptr addrspace(1) %obj.r, i64 8
  %v = load i64, ptr addrspace(1) %field.r, align 8
  %result = select i1 %ok, i64 %v, i64 -1
  ret i64 %result
}

; An array of n words a[i] = 3i + 1, summed through a pointer that walks it: at each element a
; collection moves the array, and the element pointer is a derived pointer of the array. Returns
; the sum, or -1 if the array's header is wrong at the end.
define i64 @sum_array(ptr %ctx, i64 %n) gc "statepoint-example" {
entry:
  %ra = call ptr @llvm.addressofreturnaddress.p0()
  %entry.p = getelementptr i8, ptr %ctx, i64 8
  store ptr %ra, ptr %entry.p, align 8
  %words = shl i64 %n, 3
  %bytes = add i64 %words, 8
  %t0 = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 2, i32 0,
      ptr elementtype(ptr addrspace(1) (ptr, i64, i64)) @rt_alloc, i32 3, i32 0, ptr %ctx, i64 %bytes, i64 %bytes, i32 0, i32 0)
  %arr = call ptr addrspace(1) @llvm.experimental.gc.result.p1(token %t0)
  br label %fill
fill:
  %i = phi i64 [ 0, %entry ], [ %i.next, %fill ]
  %off = shl i64 %i, 3
  %off1 = add i64 %off, 8
  %e = getelementptr i8, ptr addrspace(1) %arr, i64 %off1
  %i3 = mul i64 %i, 3
  %v = add i64 %i3, 1
  store i64 %v, ptr addrspace(1) %e, align 8
  %i.next = add i64 %i, 1
  %filled = icmp uge i64 %i.next, %n
  br i1 %filled, label %walk.start, label %fill
walk.start:
  %first = getelementptr i8, ptr addrspace(1) %arr, i64 8
  br label %walk
walk:
  %j = phi i64 [ 0, %walk.start ], [ %j.next, %walk ]
  %base = phi ptr addrspace(1) [ %arr, %walk.start ], [ %base.r, %walk ]
  %p = phi ptr addrspace(1) [ %first, %walk.start ], [ %p.next, %walk ]
  %sum = phi i64 [ 0, %walk.start ], [ %sum.next, %walk ]
  %t = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 3, i32 0,
      ptr elementtype(void (ptr)) @rt_collect, i32 1, i32 0, ptr %ctx, i32 0, i32 0)
      [ "gc-live"(ptr addrspace(1) %p, ptr addrspace(1) %base) ]
  %p.r = call ptr addrspace(1) @llvm.experimental.gc.relocate.p1(token %t, i32 1, i32 0)
  %base.r = call ptr addrspace(1) @llvm.experimental.gc.relocate.p1(token %t, i32 1, i32 1)
  %x = load i64, ptr addrspace(1) %p.r, align 8
  %sum.next = add i64 %sum, %x
  %p.next = getelementptr i8, ptr addrspace(1) %p.r, i64 8
  %j.next = add i64 %j, 1
  %more = icmp ult i64 %j.next, %n
  br i1 %more, label %walk, label %done
done:
  %header = load i64, ptr addrspace(1) %base.r, align 8
  %ok = icmp eq i64 %header, %bytes
  %result = select i1 %ok, i64 %sum.next, i64 -1
  ret i64 %result
}

; One object kept in two gc-live allocas across a collection: the collector updates the slots
; themselves. Returns value if both slots still name the same, intact object, else -1.
define i64 @alloca_roots(ptr %ctx, i64 %value) gc "statepoint-example" {
entry:
  %slot1 = alloca ptr addrspace(1), align 8
  %slot2 = alloca ptr addrspace(1), align 8
  %ra = call ptr @llvm.addressofreturnaddress.p0()
  %entry.p = getelementptr i8, ptr %ctx, i64 8
  store ptr %ra, ptr %entry.p, align 8
  %t0 = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 4, i32 0,
      ptr elementtype(ptr addrspace(1) (ptr, i64, i64)) @rt_alloc, i32 3, i32 0, ptr %ctx, i64 16, i64 16, i32 0, i32 0)
  %obj = call ptr addrspace(1) @llvm.experimental.gc.result.p1(token %t0)
  %field = getelementptr i8, ptr addrspace(1) %obj, i64 8
  store i64 %value, ptr addrspace(1) %field, align 8
  store ptr addrspace(1) %obj, ptr %slot1, align 8
  store ptr addrspace(1) %obj, ptr %slot2, align 8
  %t1 = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 5, i32 0,
      ptr elementtype(void (ptr)) @rt_collect, i32 1, i32 0, ptr %ctx, i32 0, i32 0) [ "gc-live"(ptr %slot1, ptr %slot2) ]
  %a = load ptr addrspace(1), ptr %slot1, align 8
  %b = load ptr addrspace(1), ptr %slot2, align 8
  %same = icmp eq ptr addrspace(1) %a, %b
  %header = load i64, ptr addrspace(1) %a, align 8
  %intact = icmp eq i64 %header, 16
  %ok = and i1 %same, %intact
  %field.r = getelementptr i8, ptr addrspace(1) %a, i64 8
  %v = load i64, ptr addrspace(1) %field.r, align 8
  %result = select i1 %ok, i64 %v, i64 -1
  ret i64 %result
}

; dynamic_entry -> dyn_outer (a dynamic alloca: frame size UINT64_MAX) -> fp_inner (a fixed
; frame that keeps a frame pointer). dyn_outer collects itself, then through fp_inner; the walk
; finds dyn_outer's frame through RBP both times. Returns 4 * value + 1 when all is well.
define i64 @dynamic_entry(ptr %ctx, i64 %n, i64 %value) gc "statepoint-example" {
entry:
  %ra = call ptr @llvm.addressofreturnaddress.p0()
  %entry.p = getelementptr i8, ptr %ctx, i64 8
  store ptr %ra, ptr %entry.p, align 8
  %t = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 6, i32 0,
      ptr elementtype(i64 (ptr, i64, i64)) @dyn_outer, i32 3, i32 0, ptr %ctx, i64 %n, i64 %value, i32 0, i32 0)
  %r = call i64 @llvm.experimental.gc.result.i64(token %t)
  ret i64 %r
}

define i64 @dyn_outer(ptr %ctx, i64 %n, i64 %value) noinline gc "statepoint-example" {
entry:
  %buf = alloca i64, i64 %n, align 16
  %last.i = sub i64 %n, 1
  %last.p = getelementptr i64, ptr %buf, i64 %last.i
  %value1 = add i64 %value, 1
  store volatile i64 %value1, ptr %last.p, align 8
  %t0 = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 7, i32 0,
      ptr elementtype(ptr addrspace(1) (ptr, i64, i64)) @rt_alloc, i32 3, i32 0, ptr %ctx, i64 16, i64 16, i32 0, i32 0)
  %a = call ptr addrspace(1) @llvm.experimental.gc.result.p1(token %t0)
  %field = getelementptr i8, ptr addrspace(1) %a, i64 8
  store i64 %value, ptr addrspace(1) %field, align 8
  %t1 = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 8, i32 0,
      ptr elementtype(void (ptr)) @rt_collect, i32 1, i32 0, ptr %ctx, i32 0, i32 0) [ "gc-live"(ptr addrspace(1) %a) ]
  %a.1 = call ptr addrspace(1) @llvm.experimental.gc.relocate.p1(token %t1, i32 0, i32 0)
  %t2 = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 9, i32 0,
      ptr elementtype(i64 (ptr, i64)) @fp_inner, i32 2, i32 0, ptr %ctx, i64 %value, i32 0, i32 0) [ "gc-live"(ptr addrspace(1) %a.1) ]
  %inner = call i64 @llvm.experimental.gc.result.i64(token %t2)
  %a.2 = call ptr addrspace(1) @llvm.experimental.gc.relocate.p1(token %t2, i32 0, i32 0)
  %header = load i64, ptr addrspace(1) %a.2, align 8
  %ok = icmp eq i64 %header, 16
  %field.2 = getelementptr i8, ptr addrspace(1) %a.2, i64 8
  %v = load i64, ptr addrspace(1) %field.2, align 8
  %last = load volatile i64, ptr %last.p, align 8
  %s1 = add i64 %v, %inner
  %s2 = add i64 %s1, %last
  %result = select i1 %ok, i64 %s2, i64 -1
  ret i64 %result
}

define i64 @fp_inner(ptr %ctx, i64 %value) noinline "frame-pointer"="all" gc "statepoint-example" {
entry:
  %t0 = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 10, i32 0,
      ptr elementtype(ptr addrspace(1) (ptr, i64, i64)) @rt_alloc, i32 3, i32 0, ptr %ctx, i64 16, i64 16, i32 0, i32 0)
  %b = call ptr addrspace(1) @llvm.experimental.gc.result.p1(token %t0)
  %twice = shl i64 %value, 1
  %field = getelementptr i8, ptr addrspace(1) %b, i64 8
  store i64 %twice, ptr addrspace(1) %field, align 8
  %t1 = call token (i64, i32, ptr, i32, i32, ...) @llvm.experimental.gc.statepoint.p0(i64 11, i32 0,
      ptr elementtype(void (ptr)) @rt_collect, i32 1, i32 0, ptr %ctx, i32 0, i32 0) [ "gc-live"(ptr addrspace(1) %b) ]
  %b.r = call ptr addrspace(1) @llvm.experimental.gc.relocate.p1(token %t1, i32 0, i32 0)
  %header = load i64, ptr addrspace(1) %b.r, align 8
  %ok = icmp eq i64 %header, 16
  %field.r = getelementptr i8, ptr addrspace(1) %b.r, i64 8
  %v = load i64, ptr addrspace(1) %field.r, align 8
  %result = select i1 %ok, i64 %v, i64 -1000000
  ret i64 %result
}

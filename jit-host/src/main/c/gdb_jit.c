/*
 * The GDB JIT interface for the JIT host (gdb manual, "JIT Compilation Interface"): the
 * descriptor gdb reads and the function it sets its breakpoint on, in a shared library of their
 * own, because gdb finds both by symbol name in the objects the dynamic loader loaded. The host
 * links and unlinks entries only through the two functions below, which hold one process-wide
 * mutex while they change the list and call __jit_debug_register_code, so that hosts on any
 * number of threads (and class loaders) keep one consistent list.
 *
 * Built by jit-host's Maven build with the system C compiler and shipped in its jar.
 */
#include <pthread.h>
#include <stdint.h>

#define EXPORT __attribute__((visibility("default")))

enum { JIT_NOACTION = 0, JIT_REGISTER_FN = 1, JIT_UNREGISTER_FN = 2 };

struct jit_code_entry {
    struct jit_code_entry *next_entry;
    struct jit_code_entry *prev_entry;
    const char *symfile_addr;
    uint64_t symfile_size;
};

struct jit_descriptor {
    uint32_t version;
    uint32_t action_flag;
    struct jit_code_entry *relevant_entry;
    struct jit_code_entry *first_entry;
};

/* The version is set statically: gdb checks it before the first registration. */
EXPORT struct jit_descriptor __jit_debug_descriptor = { 1, JIT_NOACTION, 0, 0 };

/* gdb's breakpoint: it must exist as a real call, never inlined or folded away. */
EXPORT __attribute__((noinline)) void __jit_debug_register_code(void) {
    __asm__ volatile("" ::: "memory");
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Links entry at the head of the list and tells the debugger. */
EXPORT void safepointkit_gdb_jit_register(struct jit_code_entry *entry) {
    pthread_mutex_lock(&lock);
    entry->prev_entry = 0;
    entry->next_entry = __jit_debug_descriptor.first_entry;
    if (entry->next_entry) {
        entry->next_entry->prev_entry = entry;
    }
    __jit_debug_descriptor.first_entry = entry;
    __jit_debug_descriptor.relevant_entry = entry;
    __jit_debug_descriptor.action_flag = JIT_REGISTER_FN;
    __jit_debug_register_code();
    __jit_debug_descriptor.action_flag = JIT_NOACTION;
    pthread_mutex_unlock(&lock);
}

/* Unlinks entry and tells the debugger which one went; the caller frees the entry and its symfile only after this returns. */
EXPORT void safepointkit_gdb_jit_unregister(struct jit_code_entry *entry) {
    pthread_mutex_lock(&lock);
    if (entry->prev_entry) {
        entry->prev_entry->next_entry = entry->next_entry;
    } else {
        __jit_debug_descriptor.first_entry = entry->next_entry;
    }
    if (entry->next_entry) {
        entry->next_entry->prev_entry = entry->prev_entry;
    }
    __jit_debug_descriptor.relevant_entry = entry;
    __jit_debug_descriptor.action_flag = JIT_UNREGISTER_FN;
    __jit_debug_register_code();
    __jit_debug_descriptor.action_flag = JIT_NOACTION;
    __jit_debug_descriptor.relevant_entry = 0;
    pthread_mutex_unlock(&lock);
}

/* Copies up to max entries' (symfile_addr, symfile_size) pairs, head first, into out; returns how many are linked. */
EXPORT int64_t safepointkit_gdb_jit_snapshot(uint64_t *out, int64_t max) {
    pthread_mutex_lock(&lock);
    int64_t n = 0;
    for (struct jit_code_entry *e = __jit_debug_descriptor.first_entry; e; e = e->next_entry, n++) {
        if (n < max) {
            out[2 * n] = (uint64_t) (uintptr_t) e->symfile_addr;
            out[2 * n + 1] = e->symfile_size;
        }
    }
    pthread_mutex_unlock(&lock);
    return n;
}

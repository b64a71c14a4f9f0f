/*
 * binary-trees on Boehm GC (conservative, non-moving): the demo's own IR
 * (examples/demo/src/main/llvm/binarytrees.ll) compiled by llc-19 without
 * rewrite-statepoints-for-gc, and linked against this runtime, which allocates every node with
 * GC_MALLOC. The program's structure is the demo's (dev.safepointkit.demo.BinaryTrees): the
 * stretch tree, a long-lived tree, then for each depth from 4 to the maximum in steps of 2 that
 * many trees split over THREADS threads, every check compared with its closed form.
 *
 *   binarytrees_boehm DEPTH THREADS
 *
 * After the program's lines it prints one summary line: collections, pause p50/p99/max in ms
 * (from GC_EVENT_START to GC_EVENT_END of each collection) and the run time.
 */
#define GC_THREADS
#include <gc/gc.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The IR's entry points: every function takes a context block (poll word at 0, allocation
 * buffer top and end at 32 and 40; both 0 here, so every allocation takes rt_alloc). */
extern int64_t trees(void *ctx, int32_t depth, int64_t iterations);
extern void keep_tree(void *ctx, int32_t depth, void **handle);
extern int64_t check_kept(void *ctx, void **handle);

void rt_poll(void *ctx) { (void) ctx; }

void *rt_alloc(void *ctx, int64_t size, int64_t header) {
  (void) ctx;
  int64_t *object = GC_MALLOC((size_t) size);
  if (object == NULL) {
    fprintf(stderr, "binarytrees_boehm: out of memory\n");
    abort();
  }
  object[0] = header;
  return object;
}

void rt_bad_object(void *ctx, int64_t address, int64_t header) {
  (void) ctx;
  fprintf(stderr, "binarytrees_boehm: bad object at 0x%llx, header 0x%llx\n", (unsigned long long) address,
          (unsigned long long) header);
  abort();
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

#define MAX_PAUSES 1000000
static double pauses[MAX_PAUSES];
static int collections;
static double collection_start;

static void on_event(GC_EventType event) {
  if (event == GC_EVENT_START) {
    collection_start = now();
  } else if (event == GC_EVENT_END && collections < MAX_PAUSES) {
    pauses[collections++] = now() - collection_start;
  }
}

struct share {
  int32_t depth;
  int64_t iterations;
  int64_t check;
};

static void *worker(void *arg) {
  struct share *s = arg;
  int64_t context[8] = {0};
  s->check = trees(context, s->depth, s->iterations);
  return NULL;
}

static int64_t nodes(int d) { return ((int64_t) 1 << (d + 1)) - 1; }

static int failures;

static void emit(const char *line, int64_t check, int64_t expected) {
  puts(line);
  if (check != expected) {
    fprintf(stderr, "binarytrees_boehm: \"%s\": expected check %lld\n", line, (long long) expected);
    failures++;
  }
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s DEPTH THREADS\n", argv[0]);
    return 2;
  }
  int max_depth = atoi(argv[1]);
  int threads = atoi(argv[2]);
  if (max_depth < 6) max_depth = 6;
  GC_INIT();
  GC_allow_register_threads();
  GC_set_on_collection_event(on_event);
  double start = now();
  int64_t context[8] = {0};
  char line[128];

  int stretch = max_depth + 1;
  int64_t check = trees(context, stretch, 1);
  snprintf(line, sizeof line, "stretch tree of depth %d\t check: %lld", stretch, (long long) check);
  emit(line, check, nodes(stretch));

  void *handle = NULL;  /* a stack root: Boehm scans the stack */
  keep_tree(context, max_depth, &handle);
  for (int d = 4; d <= max_depth; d += 2) {
    int64_t iterations = (int64_t) 1 << (max_depth - d + 4);
    pthread_t ids[64];
    struct share shares[64];
    int started = 0;
    for (int t = 0; t < threads && t < 64; t++) {
      int64_t share = iterations / threads + (t < iterations % threads ? 1 : 0);
      if (share == 0) continue;
      shares[started] = (struct share) {d, share, 0};
      if (pthread_create(&ids[started], NULL, worker, &shares[started]) != 0) {
        perror("pthread_create");
        return 1;
      }
      started++;
    }
    check = 0;
    for (int t = 0; t < started; t++) {
      pthread_join(ids[t], NULL);
      check += shares[t].check;
    }
    snprintf(line, sizeof line, "%lld\t trees of depth %d\t check: %lld", (long long) iterations, d, (long long) check);
    emit(line, check, iterations * nodes(d));
  }
  check = check_kept(context, &handle);
  snprintf(line, sizeof line, "long lived tree of depth %d\t check: %lld", max_depth, (long long) check);
  emit(line, check, nodes(max_depth));
  double run = now() - start;

  qsort(pauses, (size_t) collections, sizeof pauses[0], by_value);
  double p50 = collections ? pauses[(collections - 1) / 2] : 0;
  double p99 = collections ? pauses[(int) ((collections - 1) * 0.99 + 0.5)] : 0;
  double max = collections ? pauses[collections - 1] : 0;
  printf("boehm: collections: %d, pause p50 %.3f ms, p99 %.3f ms, max %.3f ms; run %.2f s; output %s\n", collections,
         p50 * 1e3, p99 * 1e3, max * 1e3, run, failures ? "WRONG" : "verified");
  return failures ? 1 : 0;
}

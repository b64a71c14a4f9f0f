// LLVM's own stack map parser (llvm/Object/StackMapParser.h, from llvm-19-dev) over a raw
// .llvm_stackmaps section: per pass, the header check LLVM offers, the parser's construction
// (it walks every record to index them), then every function, constant, record, location and
// live-out read and summed. ParseComparison does the same work with Safepoint Kit's parser and
// must print the same checksum.
//
//   llvm_stackmap_sum SECTION_FILE WARMUP_PASSES MEASURED_PASSES
//
// Prints one line: parser, records, checksum, then the median, minimum and maximum ns per pass.
#include "llvm/Object/StackMapParser.h"
#include "llvm/Support/Error.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

using Parser = llvm::StackMapParser<llvm::endianness::little>;

static uint64_t sumEverything(llvm::ArrayRef<uint8_t> section, uint64_t &records) {
  if (llvm::Error e = Parser::validateHeader(section)) {
    llvm::logAllUnhandledErrors(std::move(e), llvm::errs(), "llvm_stackmap_sum: ");
    std::exit(1);
  }
  Parser p(section);
  uint64_t sum = p.getVersion() + p.getNumFunctions() + p.getNumConstants() + p.getNumRecords();
  for (const auto &f : p.functions())
    sum += f.getFunctionAddress() + f.getStackSize() + f.getRecordCount();
  for (const auto &c : p.constants())
    sum += c.getValue();
  for (const auto &r : p.records()) {
    sum += r.getID() + r.getInstructionOffset() + r.getNumLocations() + r.getNumLiveOuts();
    for (const auto &l : r.locations()) {
      auto kind = l.getKind();
      sum += static_cast<uint64_t>(kind) + l.getSizeInBytes() + l.getDwarfRegNum();
      switch (kind) {
      case Parser::LocationKind::Direct:
      case Parser::LocationKind::Indirect:
        sum += static_cast<uint64_t>(static_cast<int64_t>(l.getOffset()));
        break;
      case Parser::LocationKind::Constant:
        sum += l.getSmallConstant();
        break;
      case Parser::LocationKind::ConstantIndex:
        sum += l.getConstantIndex();
        break;
      default:
        break;
      }
    }
    for (const auto &o : r.liveouts())
      sum += o.getDwarfRegNum() + o.getSizeInBytes();
  }
  records = p.getNumRecords();
  return sum;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s SECTION_FILE WARMUP_PASSES MEASURED_PASSES\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "llvm_stackmap_sum: cannot read %s\n", argv[1]);
    return 1;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  llvm::ArrayRef<uint8_t> section(bytes);
  int warmup = std::atoi(argv[2]);
  int passes = std::atoi(argv[3]);
  uint64_t records = 0;
  uint64_t checksum = 0;
  for (int i = 0; i < warmup; i++)
    checksum = sumEverything(section, records);
  std::vector<long long> times;
  for (int i = 0; i < passes; i++) {
    auto start = std::chrono::steady_clock::now();
    uint64_t sum = sumEverything(section, records);
    auto end = std::chrono::steady_clock::now();
    if (sum != checksum) {
      std::fprintf(stderr, "llvm_stackmap_sum: checksum changed between passes\n");
      return 1;
    }
    times.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
  }
  std::sort(times.begin(), times.end());
  std::printf("llvm-c++ records=%llu checksum=%llu median_ns=%lld min_ns=%lld max_ns=%lld\n",
              static_cast<unsigned long long>(records), static_cast<unsigned long long>(checksum),
              times[times.size() / 2], times.front(), times.back());
  return 0;
}

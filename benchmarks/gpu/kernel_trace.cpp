// A GPU timeline without Nsight Systems (the device image's nsys cannot make reports): a CUPTI
// injection library. The CUDA driver loads it into any program started with
//
//   CUDA_INJECTION64_PATH=build/gpu/benchmarks/gpu/libvllm_kernel_trace.so KERNEL_TRACE_OUT=t.csv prog ...
//
// and it records every kernel and memory copy (graph replays included, with their real start and
// end on the GPU, overlaps from programmatic dependent launch kept) and writes them at exit as CSV:
// kind,start_ns,end_ns,name. benchmarks/gpu/trace_summary.py turns that into a per-step table.
#include <cupti.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Event {
  char kind;  // 'K' kernel, 'M' memcpy, 'S' memset
  uint64_t start, end;
  std::string name;
};

std::mutex g_mutex;
std::vector<Event> g_events;
constexpr size_t kBufferBytes = size_t{8} << 20;

void check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return;
  const char* msg = nullptr;
  cuptiGetResultString(r, &msg);
  std::fprintf(stderr, "kernel_trace: %s: %s\n", what, msg ? msg : "?");
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = kBufferBytes;
  *max_records = 0;
}

const char* copy_kind(uint8_t k) {
  switch (k) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "DtoD";
    default: return "copy";
  }
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::vector<Event> got;
  CUpti_Activity* rec = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
      auto* k = reinterpret_cast<CUpti_ActivityKernel10*>(rec);
      got.push_back({'K', k->start, k->end, k->name ? k->name : "?"});
    } else if (rec->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      auto* m = reinterpret_cast<CUpti_ActivityMemcpy6*>(rec);
      got.push_back({'M', m->start, m->end, std::string(copy_kind(m->copyKind)) + " " + std::to_string(m->bytes)});
    } else if (rec->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
      auto* m = reinterpret_cast<CUpti_ActivityMemset4*>(rec);
      got.push_back({'S', m->start, m->end, "memset " + std::to_string(m->bytes)});
    }
  }
  std::free(buffer);
  std::lock_guard<std::mutex> lock(g_mutex);
  g_events.insert(g_events.end(), got.begin(), got.end());
}

void write_trace() {
  check(cuptiActivityFlushAll(1), "cuptiActivityFlushAll");
  const char* path = std::getenv("KERNEL_TRACE_OUT");
  std::FILE* f = std::fopen(path && *path ? path : "kernel_trace.csv", "w");
  if (!f) {
    std::perror("kernel_trace: open");
    return;
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(f, "kind,start_ns,end_ns,name\n");
  for (const Event& e : g_events) {
    // Kernel names are mangled C++; commas never occur in them, quotes are not needed.
    std::fprintf(f, "%c,%llu,%llu,%s\n", e.kind, static_cast<unsigned long long>(e.start),
                 static_cast<unsigned long long>(e.end), e.name.c_str());
  }
  std::fclose(f);
  std::fprintf(stderr, "kernel_trace: %zu events written\n", g_events.size());
}

}  // namespace

// Called by the CUDA driver when CUDA_INJECTION64_PATH names this library.
extern "C" __attribute__((visibility("default"))) int InitializeInjection() {
  check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed), "RegisterCallbacks");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable kernels");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY), "enable memcpy");
  check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMSET), "enable memset");
  std::atexit(write_trace);
  return 1;
}

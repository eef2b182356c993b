// cuda_address_range.cu: the caching allocator's growing address range (ops/backend/block_cache.h)
// through CUDA's virtual memory management: addresses for the whole device reserved once
// (cuMemAddressReserve), memory mapped at the range's end in 2 MiB pieces (cuMemCreate,
// cuMemMap, cuMemSetAccess), each piece its own allocation so that any 2 MiB-aligned end can
// be unmapped again. The driver's functions are looked up through the runtime
// (cudaGetDriverEntryPoint), so nothing links against libcuda and CPU-only machines still
// load the binaries. The range is off where the device or driver lacks these functions, and
// with FPA_CUDA_ADDRESS_RANGE=0 in the environment: the allocator then takes cudaMalloc
// segments for large blocks too. Every driver call's result is checked; a failure prints one
// line on stderr naming the call and its result (a failed reservation or the first failed
// mapping, since each turns large blocks over to cudaMalloc), so a run's log shows whether
// the range is in use. Called with the allocator's lock held.
#include <cuda.h>
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "ops/backend/cuda/cuda_common.cuh"

namespace fpa::gpu {
namespace {

constexpr size_t kPiece = size_t(2) << 20;

struct DriverApi {
  decltype(&cuDeviceGet) device_get = nullptr;
  decltype(&cuDeviceGetAttribute) device_attribute = nullptr;
  decltype(&cuMemGetAllocationGranularity) granularity = nullptr;
  decltype(&cuMemAddressReserve) address_reserve = nullptr;
  decltype(&cuMemCreate) create = nullptr;
  decltype(&cuMemRelease) release = nullptr;
  decltype(&cuMemMap) map = nullptr;
  decltype(&cuMemUnmap) unmap = nullptr;
  decltype(&cuMemSetAccess) set_access = nullptr;
  decltype(&cuGetErrorName) error_name = nullptr;  // optional: for messages
  CUmemAllocationProp prop{};
  CUmemAccessDesc access{};
  std::map<CUdeviceptr, CUmemGenericAllocationHandle> pieces;  // mapped address -> its memory
};

DriverApi& api() {
  static DriverApi* d = new DriverApi();  // never destroyed, as the allocator
  return *d;
}

template <typename Fn>
bool look_up(const char* name, Fn& fn) {
  void* p = nullptr;
  bool found = true;
#if CUDART_VERSION >= 12050  // the functions as CUDA 12.0 has them (they date from 10.2)
  cudaDriverEntryPointQueryResult status = cudaDriverEntryPointSymbolNotFound;
  const cudaError_t e = cudaGetDriverEntryPointByVersion(name, &p, 12000, cudaEnableDefault, &status);
  found = status == cudaDriverEntryPointSuccess;
#elif CUDART_VERSION >= 12000
  cudaDriverEntryPointQueryResult status = cudaDriverEntryPointSymbolNotFound;
  const cudaError_t e = cudaGetDriverEntryPoint(name, &p, cudaEnableDefault, &status);
  found = status == cudaDriverEntryPointSuccess;
#else
  const cudaError_t e = cudaGetDriverEntryPoint(name, &p, cudaEnableDefault);
#endif
  if (e != cudaSuccess || !found || !p) {
    (void)cudaGetLastError();
    return false;
  }
  fn = reinterpret_cast<Fn>(p);
  return true;
}

bool look_up_all(DriverApi& d) {
  look_up("cuGetErrorName", d.error_name);
  return look_up("cuDeviceGet", d.device_get) && look_up("cuDeviceGetAttribute", d.device_attribute) &&
         look_up("cuMemGetAllocationGranularity", d.granularity) &&
         look_up("cuMemAddressReserve", d.address_reserve) && look_up("cuMemCreate", d.create) &&
         look_up("cuMemRelease", d.release) && look_up("cuMemMap", d.map) && look_up("cuMemUnmap", d.unmap) &&
         look_up("cuMemSetAccess", d.set_access);
}

// "cuMemMap returned CUDA_ERROR_OUT_OF_MEMORY (2)".
std::string driver_result(const char* call, CUresult r) {
  const char* name = nullptr;
  if (!api().error_name || api().error_name(r, &name) != CUDA_SUCCESS || !name) name = "an unknown result";
  return fmt::format("{} returned {} ({})", call, name, int(r));
}

void report(const std::string& what) { fmt::print(stderr, "fpa: cuda: {}\n", what); }

// True when the driver call succeeded; otherwise reported (never thrown: frees reach here).
bool checked(CUresult r, const char* call) {
  if (r == CUDA_SUCCESS) return true;
  report("the allocator's address range: " + driver_result(call, r));
  return false;
}

// Unmaps and releases the pieces mapped in [at, at + bytes).
void unmap_pieces(void* at, size_t bytes) {
  DriverApi& d = api();
  const CUdeviceptr start = reinterpret_cast<CUdeviceptr>(at);
  for (CUdeviceptr p = start; p < start + bytes; p += kPiece) {
    auto it = d.pieces.find(p);
    if (it == d.pieces.end()) continue;
    checked(d.unmap(p, kPiece), "cuMemUnmap");
    checked(d.release(it->second), "cuMemRelease");
    d.pieces.erase(it);
  }
}

}  // namespace

void* address_range_reserve(size_t& capacity) {
  const char* env = std::getenv("FPA_CUDA_ADDRESS_RANGE");
  if (env && std::strcmp(env, "0") == 0) return nullptr;
  const char* off = "the allocator's address range is off (large blocks come from cudaMalloc): ";
  DriverApi& d = api();
  if (!look_up_all(d)) {
    report(std::string(off) + "the driver lacks CUDA's virtual memory functions");
    return nullptr;
  }
  int ordinal = 0, supported = 0;
  CUdevice device = 0;
  if (cudaGetDevice(&ordinal) != cudaSuccess) {
    (void)cudaGetLastError();
    return nullptr;  // no device: the first kernel or copy says so
  }
  CUresult r = d.device_get(&device, ordinal);
  if (r == CUDA_SUCCESS)
    r = d.device_attribute(&supported, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, device);
  if (r != CUDA_SUCCESS || !supported) {
    report(off + (r != CUDA_SUCCESS ? driver_result("cuDeviceGet / cuDeviceGetAttribute", r)
                                    : std::string("the device does not support virtual memory management")));
    return nullptr;
  }
  d.prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  d.prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  d.prop.location.id = device;
  d.access.location = d.prop.location;
  d.access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  size_t granularity = 0, free_bytes = 0, total_bytes = 0;
  r = d.granularity(&granularity, &d.prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
  if (r != CUDA_SUCCESS || granularity == 0 || kPiece % granularity != 0) {
    report(off + (r != CUDA_SUCCESS ? driver_result("cuMemGetAllocationGranularity", r)
                                    : fmt::format("its granularity {} does not divide 2 MiB", granularity)));
    return nullptr;
  }
  const cudaError_t info = cudaMemGetInfo(&free_bytes, &total_bytes);
  if (info != cudaSuccess) {
    (void)cudaGetLastError();
    report(fmt::format("{}cudaMemGetInfo returned {}", off, cudaGetErrorString(info)));
    return nullptr;
  }
  capacity = (total_bytes + kPiece - 1) / kPiece * kPiece;  // as much as the device has
  CUdeviceptr base = 0;
  r = d.address_reserve(&base, capacity, kPiece, 0, 0);
  if (r != CUDA_SUCCESS) {
    report(off + driver_result(fmt::format("cuMemAddressReserve of {} bytes", capacity).c_str(), r));
    return nullptr;
  }
  return reinterpret_cast<void*>(base);
}

void address_range_unmap(void* at, size_t bytes) {
  // Unlike cudaFree, unmapping need not wait for the kernels still using the memory: wait here.
  if (cudaDeviceSynchronize() != cudaSuccess) (void)cudaGetLastError();
  unmap_pieces(at, bytes);
}

bool address_range_map(void* at, size_t bytes) {
  DriverApi& d = api();
  const CUdeviceptr start = reinterpret_cast<CUdeviceptr>(at);
  for (size_t offset = 0; offset < bytes; offset += kPiece) {
    const CUdeviceptr p = start + offset;
    CUmemGenericAllocationHandle piece = 0;
    const char* call = "cuMemCreate";
    CUresult r = d.create(&piece, kPiece, &d.prop, 0);  // fails when the device is full
    if (r == CUDA_SUCCESS) {
      call = "cuMemMap";
      r = d.map(p, kPiece, 0, piece, 0);
      if (r == CUDA_SUCCESS) {
        call = "cuMemSetAccess";
        r = d.set_access(p, kPiece, &d.access, 1);
        if (r != CUDA_SUCCESS) checked(d.unmap(p, kPiece), "cuMemUnmap");
      }
      if (r != CUDA_SUCCESS) checked(d.release(piece), "cuMemRelease");
    }
    if (r != CUDA_SUCCESS) {  // all or nothing; nothing used these pieces yet (and a capture may be open: no waiting)
      static bool reported = false;
      if (!reported) {
        reported = true;
        report(fmt::format("the allocator's address range could not grow by {} bytes: {}; such blocks come from "
                           "cudaMalloc while it cannot (reported once)",
                           bytes, driver_result(call, r)));
      }
      unmap_pieces(at, offset);
      return false;
    }
    d.pieces[p] = piece;
  }
  return true;
}

}  // namespace fpa::gpu

// The bytes of one KVEventBatch, as vLLM's msgspec encoder writes them (vllm/distributed/
// kv_events.py). Array layout (WireFormat::kArray, msgspec's array_like structs with the tag
// first):
//
//   [ts, [event, ...], data_parallel_rank]
//   ["BlockStored", [hash, ...], parent_hash | nil, [token_id, ...], block_size, lora_id | nil,
//    medium, lora_name | nil]
//   ["BlockRemoved", [hash, ...], medium]
//   ["AllBlocksCleared"]
//
// The map layout (WireFormat::kMap) has the same fields by name, each event's tag under "type".
// Fields vLLM added later with None defaults (extra_keys, group_idx, kv_cache_spec_*) are left
// out, as msgspec's omit_defaults leaves them out when unset; older subscribers ignore the
// trailing lora_name (msgspec ignores extra trailing array elements).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vllm/kv_cache/kv_cache_events.h"
#include "vllm/kv_events/kv_events_config.h"

namespace vllm::kv_events {

// vLLM's "medium" of blocks in the engine's own KV cache (vLLM says GPU whatever the device).
inline constexpr const char* kMediumGPU = "GPU";

// The integer a block is published as: the low 64 bits of our 128-bit XXH3 block hash. (vLLM
// publishes the last 8 bytes of its SHA-256 block hash, big-endian, as an unsigned integer; ours
// are the last 8 bytes of XXH3-128's canonical big-endian form.)
inline uint64_t external_block_hash(const BlockHash& h) { return h.low; }

// One batch: `ts` in seconds since the epoch (Python's time.time()).
std::string encode_event_batch(double ts, const std::vector<KVCacheEvent>& events, int64_t data_parallel_rank,
                               WireFormat format);

}  // namespace vllm::kv_events

#include "vllm/kv_events/event_batch.h"

#include "vllm/kv_events/msgpack.h"

namespace vllm::kv_events {

namespace {

void hashes(MsgpackWriter& w, const std::vector<BlockHash>& hs) {
  w.array(static_cast<uint32_t>(hs.size()));
  for (const BlockHash& h : hs) w.uint(external_block_hash(h));
}

// The fields of each event in declaration order (vLLM's structs), written as an array after the
// tag or as a map after "type".
void event(MsgpackWriter& w, const KVCacheEvent& e, WireFormat format) {
  const bool as_map = format == WireFormat::kMap;
  auto key = [&](const char* k) {
    if (as_map) w.str(k);
  };
  switch (e.kind) {
    case KVCacheEvent::Kind::kBlockStored:
      as_map ? w.map(8) : w.array(8);
      key("type");
      w.str("BlockStored");
      key("block_hashes");
      hashes(w, e.block_hashes);
      key("parent_block_hash");
      if (e.parent_block_hash) w.uint(external_block_hash(*e.parent_block_hash));
      else w.nil();
      key("token_ids");
      w.array(static_cast<uint32_t>(e.token_ids.size()));
      for (int32_t t : e.token_ids) w.integer(t);
      key("block_size");
      w.integer(e.block_size);
      key("lora_id");
      w.nil();  // no LoRA adapters here
      key("medium");
      w.str(kMediumGPU);
      key("lora_name");
      w.nil();
      break;
    case KVCacheEvent::Kind::kBlockRemoved:
      as_map ? w.map(3) : w.array(3);
      key("type");
      w.str("BlockRemoved");
      key("block_hashes");
      hashes(w, e.block_hashes);
      key("medium");
      w.str(kMediumGPU);
      break;
    case KVCacheEvent::Kind::kAllBlocksCleared:
      as_map ? w.map(1) : w.array(1);
      key("type");
      w.str("AllBlocksCleared");
      break;
  }
}

}  // namespace

std::string encode_event_batch(double ts, const std::vector<KVCacheEvent>& events, int64_t data_parallel_rank,
                               WireFormat format) {
  MsgpackWriter w;
  const bool as_map = format == WireFormat::kMap;
  as_map ? w.map(3) : w.array(3);
  if (as_map) w.str("ts");
  w.float64(ts);
  if (as_map) w.str("events");
  w.array(static_cast<uint32_t>(events.size()));
  for (const KVCacheEvent& e : events) event(w, e, format);
  if (as_map) w.str("data_parallel_rank");
  w.integer(data_parallel_rank);
  return w.take();
}

}  // namespace vllm::kv_events

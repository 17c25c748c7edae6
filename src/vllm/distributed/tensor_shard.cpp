#include "vllm/distributed/tensor_shard.h"

#include <cstring>

#include "vllm/core/error.h"

namespace vllm {

std::pair<int64_t, int64_t> shard_range(const ShardSegment& s, int rank, int world) {
  if (world == 1) return {0, s.count};
  if (s.uneven) {
    const int64_t chunk = (s.count + world - 1) / world;
    return {std::min(s.count, chunk * rank), std::min(s.count, chunk * (rank + 1))};
  }
  if (s.count < world) {
    // Fewer units than ranks (KV heads): rank r serves query heads of the unit r * count / world.
    const int64_t u = static_cast<int64_t>(rank) * s.count / world;
    return {u, u + 1};
  }
  return {s.count * rank / world, s.count * (rank + 1) / world};
}

namespace {

void check_divides(const ShardSegment& s, int world, const std::string& what) {
  if (world == 1 || s.uneven) return;
  const bool ok = s.count >= world ? s.count % world == 0 : world % s.count == 0;
  if (!ok)
    throw Error(what + ": " + std::to_string(s.count) + " cannot be split over --tensor-parallel-size " +
                    std::to_string(world) + " ranks (it must divide it, or be a multiple of it)",
                ErrorKind::kUnsupported);
}

}  // namespace

Tensor TensorShard::apply(const std::string& name, const Tensor& full) const {
  auto it = rules.find(name);
  if (world_size == 1 || it == rules.end()) return full;
  const ShardRule& rule = it->second;
  if (rule.kind == ShardRule::Kind::kFirstRankOnly) {
    if (rank == 0) return full;
    return Tensor::zeros(full.shape(), full.dtype());
  }
  const Shape& shape = full.shape();
  VLLM_CHECK(rule.dim < full.dim(), "shard rule of " + name + " names a dimension the tensor lacks");
  int64_t along = 0;
  for (const ShardSegment& s : rule.segments) along += s.count * s.unit;
  if (shape[static_cast<size_t>(rule.dim)] != along)
    throw Error("tensor '" + name + "' has " + std::to_string(shape[static_cast<size_t>(rule.dim)]) +
                    " rows along dimension " + std::to_string(rule.dim) + " but the config needs " + std::to_string(along),
                ErrorKind::kModelLoad);
  // Runs [begin, end) of elements along dim that this rank keeps, in order.
  std::vector<std::pair<int64_t, int64_t>> runs;
  int64_t at = 0, kept = 0;
  for (const ShardSegment& s : rule.segments) {
    check_divides(s, world_size, "tensor '" + name + "'");
    const auto [b, e] = shard_range(s, rank, world_size);
    runs.emplace_back(at + b * s.unit, at + e * s.unit);
    kept += (e - b) * s.unit;
    at += s.count * s.unit;
  }
  Shape out_shape = shape;
  out_shape[static_cast<size_t>(rule.dim)] = kept;
  Tensor out = Tensor::empty(out_shape, full.dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < rule.dim; ++d) outer *= shape[static_cast<size_t>(d)];
  for (int64_t d = rule.dim + 1; d < full.dim(); ++d) inner *= shape[static_cast<size_t>(d)];
  const size_t elem = dtype_size(full.dtype());
  const auto* src = static_cast<const uint8_t*>(full.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (const auto& [b, e] : runs) {
      const size_t n = static_cast<size_t>((e - b) * inner) * elem;
      std::memcpy(dst, src + static_cast<size_t>((o * along + b) * inner) * elem, n);
      dst += n;
    }
  return out;
}

int64_t shard_units(int64_t count, int rank, int world, const std::string& what) {
  const ShardSegment s{count, 1, false};
  check_divides(s, world, what);
  const auto [b, e] = shard_range(s, rank, world);
  return e - b;
}

ModelConfig shard_config(const ModelConfig& full, int rank, int world) {
  ModelConfig c = full;
  if (world == 1) return c;
  auto split = [&](int64_t count, const char* key) { return shard_units(count, rank, world, std::string("config.json: ") + key); };
  if (full.num_attention_heads % world != 0)
    throw Error("config.json: num_attention_heads (" + std::to_string(full.num_attention_heads) +
                    ") must be divisible by --tensor-parallel-size " + std::to_string(world),
                ErrorKind::kUnsupported);
  c.num_attention_heads = full.num_attention_heads / world;
  c.num_key_value_heads = split(full.num_key_value_heads, "num_key_value_heads");
  c.intermediate_size = split(full.intermediate_size, "intermediate_size");
  const auto [vb, ve] = shard_range(ShardSegment{full.vocab_size, 1, true}, rank, world);
  c.vocab_size = ve - vb;
  return c;
}

int64_t shard_vocab_begin(const ModelConfig& full, int rank, int world) {
  return shard_range(ShardSegment{full.vocab_size, 1, true}, rank, world).first;
}

ShardRule vocab_rule(const ModelConfig& c) { return {ShardRule::Kind::kSplit, 0, {{c.vocab_size, 1, true}}}; }

ShardRule qkv_rule(const ModelConfig& c, int64_t dim) {
  return {ShardRule::Kind::kSplit,
          dim,
          {{c.num_attention_heads, c.head_dim}, {c.num_key_value_heads, c.head_dim}, {c.num_key_value_heads, c.head_dim}}};
}

ShardRule split_rule(int64_t dim, int64_t count, int64_t unit) { return {ShardRule::Kind::kSplit, dim, {{count, unit}}}; }

ShardRule first_rank_rule() { return {ShardRule::Kind::kFirstRankOnly, 0, {}}; }

}  // namespace vllm

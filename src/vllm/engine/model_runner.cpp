#include "vllm/engine/model_runner.h"

#include <chrono>

#include <algorithm>

#include "vllm/core/error.h"

namespace vllm {

size_t ModelRunner::block_bytes(const ModelConfig& c, int64_t kv_tensors, int block_size, DType kv_dtype) {
  return 2 * static_cast<size_t>(kv_tensors) * static_cast<size_t>(c.num_key_value_heads) *
         static_cast<size_t>(block_size) * static_cast<size_t>(c.head_dim) * dtype_size(kv_dtype);
}

size_t ModelRunner::bytes_per_block() const {
  size_t bytes = 0;
  for (const RankState& r : ranks_)
    bytes += block_bytes(r.model->shard_config(), layout_.group_size, block_size_, r.backend->kv_cache_dtype());
  return bytes;
}

size_t ModelRunner::weight_bytes() const {
  size_t bytes = 0;
  for (const RankState& r : ranks_) bytes += r.model->weight_bytes();
  return bytes;
}

size_t ModelRunner::weight_bytes_per_token() const {
  size_t bytes = 0;
  for (const RankState& r : ranks_) bytes += r.model->weight_bytes_per_token();
  return bytes;
}

struct ModelRunner::HostStep {
  ForwardInputs shape;  // the counts and host copies; the device tensors are each rank's upload
  Tensor ids, pos, qsl, lens, rows;
  std::vector<Tensor> tables, slots;  // per KV cache group
  std::vector<int64_t> max_blocks;
};

ForwardInputs ModelRunner::upload(Backend& b, const HostStep& h) {
  ForwardInputs in = h.shape;
  in.token_ids = b.upload(h.ids, DType::I32);
  in.positions = b.upload(h.pos, DType::I32);
  in.slot_mapping = b.upload(h.slots[0], DType::I64);
  in.query_start_loc = b.upload(h.qsl, DType::I32);
  in.seq_lens = b.upload(h.lens, DType::I32);
  in.block_tables = b.upload(h.tables[0], DType::I32);
  for (size_t g = 1; g < h.tables.size(); ++g)
    in.more_kv_groups.push_back({b.upload(h.slots[g], DType::I64), b.upload(h.tables[g], DType::I32), h.max_blocks[g]});
  in.logits_indices = b.upload(h.rows, DType::I32);
  return in;
}

ModelRunner::ModelRunner(std::unique_ptr<Backend> backend, std::unique_ptr<CausalLM> model, int64_t num_blocks,
                         int block_size, const KVCacheLayout& layout)
    : ModelRunner(
          [&] {
            std::vector<Rank> ranks(1);
            ranks[0] = {std::move(backend), std::move(model)};
            return ranks;
          }(),
          num_blocks, block_size, layout) {}

ModelRunner::~ModelRunner() = default;

ModelRunner::ModelRunner(std::vector<Rank> ranks, int64_t num_blocks, int block_size, const KVCacheLayout& layout)
    : num_blocks_(num_blocks), block_size_(block_size), layout_(layout) {
  VLLM_CHECK(!ranks.empty(), "a model runner has at least one rank");
  for (Rank& rank : ranks) {
    RankState r{std::move(rank.backend), std::move(rank.model), {}, {}};
    const ModelConfig& c = r.model->shard_config();  // this rank's KV heads
    VLLM_CHECK(layout_.num_layers() == c.num_hidden_layers, "the KV cache layout is for another number of layers");
    Backend& b = *r.backend;
    Shape shape{num_blocks, c.num_key_value_heads, block_size, c.head_dim};
    for (int64_t i = 0; i < layout_.group_size; ++i)
      r.slot_tensors.push_back({b.empty(shape, b.kv_cache_dtype()), b.empty(shape, b.kv_cache_dtype())});
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      KVCacheLayer layer = r.slot_tensors[static_cast<size_t>(layout_.layer_slot[static_cast<size_t>(l)])];
      layer.group = layout_.layer_group[static_cast<size_t>(l)];
      if (static_cast<size_t>(l) < r.model->kv_scales().size()) {  // an FP8 KV cache's (CausalLM::kv_scales)
        layer.k_scale = r.model->kv_scales()[static_cast<size_t>(l)].k;
        layer.v_scale = r.model->kv_scales()[static_cast<size_t>(l)].v;
      }
      r.kv_cache.push_back(std::move(layer));
    }
    ranks_.push_back(std::move(r));
  }
  if (ranks_.size() > 1) rank_threads_ = std::make_unique<RankThreads>(static_cast<int>(ranks_.size()));
}

Tensor ModelRunner::execute(const SchedulerOutput& step, KVCacheManager& kv, LogitsPlan* plan) {
  const auto started = std::chrono::steady_clock::now();
  const int64_t T = step.num_scheduled_tokens, S = static_cast<int64_t>(step.scheduled.size());
  const int G = layout_.num_groups();
  // Per group: block tables [S, max_blocks] and the slot of every token (kNoBlock entries of a
  // sliding group stay in its table: no query of this step reads them).
  std::vector<int64_t> max_blocks(static_cast<size_t>(G), 1);
  for (const auto& s : step.scheduled)
    for (int g = 0; g < G; ++g)
      max_blocks[static_cast<size_t>(g)] = std::max<int64_t>(max_blocks[static_cast<size_t>(g)],
                                                             static_cast<int64_t>(kv.block_table(s.request->seq_id, g).size()));
  HostStep h;
  std::vector<Tensor>& tables = h.tables;
  std::vector<Tensor>& slots = h.slots;
  h.max_blocks = max_blocks;
  for (int g = 0; g < G; ++g) {
    tables.push_back(Tensor::zeros({S, max_blocks[static_cast<size_t>(g)]}, DType::I32));
    slots.push_back(Tensor::empty({T}, DType::I64));
  }

  Tensor ids = h.ids = Tensor::empty({T}, DType::I32), pos = h.pos = Tensor::empty({T}, DType::I32);
  Tensor qsl = h.qsl = Tensor::empty({S + 1}, DType::I32), lens = h.lens = Tensor::empty({S}, DType::I32);
  std::vector<int32_t> rows;
  plan->entries.clear();

  ForwardInputs& in = h.shape;
  in.num_tokens = T;
  in.num_seqs = S;
  in.block_size = block_size_;
  in.max_blocks_per_seq = max_blocks[0];
  in.host_query_start_loc.assign(static_cast<size_t>(S) + 1, 0);
  in.host_seq_lens.assign(static_cast<size_t>(S), 0);
  int64_t t = 0;
  for (int64_t si = 0; si < S; ++si) {
    const ScheduledRequest& s = step.scheduled[static_cast<size_t>(si)];
    Request& r = *s.request;
    const int64_t start = r.num_computed_tokens, end = start + s.num_new_tokens;
    for (int g = 0; g < G; ++g) {
      const auto& table = kv.block_table(r.seq_id, g);
      std::copy(table.begin(), table.end(), tables[static_cast<size_t>(g)].data<int32_t>() + si * max_blocks[static_cast<size_t>(g)]);
      int64_t* slot = slots[static_cast<size_t>(g)].data<int64_t>() + t;
      for (int64_t p = start; p < end; ++p)
        *slot++ = static_cast<int64_t>(table[static_cast<size_t>(p / block_size_)]) * block_size_ + p % block_size_;
    }
    qsl.data<int32_t>()[si] = static_cast<int32_t>(t);
    in.host_query_start_loc[static_cast<size_t>(si)] = static_cast<int32_t>(t);
    for (int64_t p = start; p < end; ++p, ++t) {
      ids.data<int32_t>()[t] = r.token_ids[static_cast<size_t>(p)];
      pos.data<int32_t>()[t] = static_cast<int32_t>(p);
    }
    lens.data<int32_t>()[si] = static_cast<int32_t>(end);
    in.host_seq_lens[static_cast<size_t>(si)] = static_cast<int32_t>(end);
    in.max_query_len = std::max(in.max_query_len, s.num_new_tokens);
    in.max_seq_len = std::max(in.max_seq_len, end);

    LogitsPlan::Entry e;
    e.request = &r;
    e.row = static_cast<int64_t>(rows.size());
    if (r.params.prompt_logprobs) {
      // Row at position p predicts token p + 1: prompt positions still due in this chunk.
      const int64_t first = std::max(start, r.next_prompt_logprob_pos - 1);
      const int64_t last = std::min(end, r.num_prompt_tokens - 1);  // exclusive
      if (last > first) {
        e.first_prompt_pos = first + 1;
        e.num_prompt_rows = last - first;
        const int64_t base = in.host_query_start_loc[static_cast<size_t>(si)] - start;
        for (int64_t p = first; p < last; ++p) rows.push_back(static_cast<int32_t>(base + p));
      }
    }
    if (end == r.num_tokens()) {
      e.sample = true;
      rows.push_back(static_cast<int32_t>(t - 1));
    }
    if (e.sample || e.num_prompt_rows > 0) plan->entries.push_back(e);
  }
  qsl.data<int32_t>()[S] = static_cast<int32_t>(T);
  in.host_query_start_loc[static_cast<size_t>(S)] = static_cast<int32_t>(T);
  plan->num_rows = static_cast<int64_t>(rows.size());
  Tensor row_t = Tensor::empty({plan->num_rows}, DType::I32);
  std::copy(rows.begin(), rows.end(), row_t.data<int32_t>());

  if (plan->num_rows == 0) {
    // Nothing to sample (all chunks mid-prompt): still run the layers to fill the KV cache.
    row_t = Tensor::empty({1}, DType::I32);
    row_t.data<int32_t>()[0] = 0;
  }
  h.rows = row_t;
  // Copy-on-write of blocks that forked sequences shared, before this step writes into them.
  const auto copies = kv.take_block_copies();
  std::vector<ForwardInputs> inputs;
  for (RankState& r : ranks_) {
    inputs.push_back(upload(*r.backend, h));
    if (!copies.empty())
      for (KVCacheLayer& tensors : r.slot_tensors) r.backend->copy_blocks(tensors, copies);
  }
  prepare_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto run_rank = [&](RankState& r, const ForwardInputs& x) {
    return r.backend->forward_step(x, [&r](const ForwardInputs& y) { return r.model->forward(y, r.kv_cache); });
  };
  if (ranks_.size() == 1) return run_rank(ranks_[0], inputs[0]);
  Tensor logits;
  rank_threads_->run(
      [&](int rank) {
        Tensor out = run_rank(ranks_[static_cast<size_t>(rank)], inputs[static_cast<size_t>(rank)]);
        if (rank == 0) logits = out;
      },
      [&] { ranks_[0].backend->abort_collectives(); });
  return logits;
}

}  // namespace vllm

#include "vllm/kv_cache/kv_cache_manager.h"

#include <algorithm>

#include "vllm/core/error.h"

namespace vllm {

KVCacheManager::KVCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching,
                               std::vector<int64_t> group_windows)
    : block_size_(block_size),
      enable_caching_(enable_prefix_caching),
      windows_(std::move(group_windows)),
      pool_(num_blocks, block_size, enable_prefix_caching) {
  VLLM_CHECK(!windows_.empty(), "a KV cache manager needs at least one group");
  for (int64_t w : windows_) VLLM_CHECK(w >= 0, "a sliding window must not be negative");
}

BlockHash KVCacheManager::root_hash(uint64_t salt, int group) const {
  // The first block's parent: a constant per (salt, group), so a cache_salt separates whole
  // prefixes and each group's blocks (which hold other layers' bytes) form their own chain.
  const BlockHash base = root_block_hash(salt);
  return group == 0 ? base : hash_block(base, nullptr, 0, static_cast<uint64_t>(group));
}

int64_t KVCacheManager::first_visible_block(int group, int64_t pos) const {
  const int64_t w = windows_[static_cast<size_t>(group)];
  // A query at `pos` sees keys at positions > pos - w.
  return w == 0 ? 0 : std::max<int64_t>(0, pos - w + 1) / block_size_;
}

void KVCacheManager::release_passed_blocks(GroupTable& table, int group, int64_t pos) {
  const int64_t first = std::min<int64_t>(first_visible_block(group, pos), static_cast<int64_t>(table.blocks.size()));
  // Passed blocks form a prefix of the table; those still held start after the returned ones.
  int64_t b = first;
  while (b > 0 && table.blocks[static_cast<size_t>(b - 1)] != kNoBlock) --b;
  // Oldest first, so that the cache evicts them first: a later request sharing the prefix needs
  // the window before the place it resumes at, which the newer blocks serve more often.
  for (; b < first; ++b) {
    pool_.release({table.blocks[static_cast<size_t>(b)]});
    table.blocks[static_cast<size_t>(b)] = kNoBlock;
  }
}

int64_t KVCacheManager::find_cached_prefix(const std::vector<int32_t>& tokens, uint64_t salt, GroupBlocks* blocks) {
  blocks->assign(windows_.size(), {});
  if (!enable_caching_) return 0;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t max_blocks = (n - 1) / block_size_;  // leave the last token to compute
  // Each group's hits along its own chain: hit[g][b] is the cached block, or kNoBlock.
  GroupBlocks hit(windows_.size());
  int64_t cached = max_blocks;  // in blocks; shrinks until every group can resume there
  for (size_t g = 0; g < windows_.size(); ++g) {
    BlockHash parent = root_hash(salt, static_cast<int>(g));
    // Full attention needs every block from the start: it stops at its first miss. (No group
    // looks past `cached`, which only shrinks.)
    for (int64_t b = 0; b < cached; ++b) {
      const int32_t* t = tokens.data() + b * block_size_;
      const BlockHash h = hash_block(parent, t, static_cast<size_t>(block_size_), 0);
      const auto found = pool_.lookup(h, parent, t);
      if (!found && windows_[g] == 0) break;
      hit[g].push_back(found ? *found : kNoBlock);
      parent = h;
    }
    if (windows_[g] == 0) cached = std::min<int64_t>(cached, static_cast<int64_t>(hit[g].size()));
  }
  // A sliding group can resume at c blocks if it holds blocks first_visible_block(c) .. c - 1.
  // Lowering c for one group may break another's window: repeat until all agree (c = 0 always does).
  for (bool changed = true; changed && cached > 0;) {
    changed = false;
    for (size_t g = 0; g < windows_.size(); ++g) {
      if (windows_[g] == 0) continue;
      int64_t c = cached;
      for (; c > 0; --c) {
        const int64_t first = first_visible_block(static_cast<int>(g), c * block_size_);
        bool all = true;
        for (int64_t b = first; b < c && all; ++b) all = hit[g][static_cast<size_t>(b)] != kNoBlock;
        if (all) break;
      }
      if (c < cached) cached = c, changed = true;
    }
  }
  for (size_t g = 0; g < windows_.size(); ++g) {
    const int64_t first = first_visible_block(static_cast<int>(g), cached * block_size_);
    auto& out = (*blocks)[g];
    out.assign(hit[g].begin(), hit[g].begin() + cached);
    std::fill(out.begin(), out.begin() + std::min(first, cached), kNoBlock);
  }
  const int64_t cached_tokens = cached * block_size_;
  recent_.queries += n;
  recent_.hits += cached_tokens;
  total_.queries += n;
  total_.hits += cached_tokens;
  return cached_tokens;
}

bool KVCacheManager::allocate_slots(uint64_t seq_id, const std::vector<int32_t>& tokens, uint64_t salt,
                                    int64_t num_computed_tokens, int64_t num_new_tokens,
                                    const GroupBlocks& cached_blocks) {
  const size_t G = windows_.size();
  VLLM_CHECK(cached_blocks.empty() || cached_blocks.size() == G, "cached blocks for a different number of groups");
  auto it = seqs_.find(seq_id);
  const bool is_new = it == seqs_.end();
  // Blocks the window has passed go back first: queries from num_computed_tokens on never read them.
  if (!is_new)
    for (size_t g = 0; g < G; ++g)
      release_passed_blocks(it->second[g], static_cast<int>(g), num_computed_tokens);

  const int64_t total_tokens = num_computed_tokens + num_new_tokens;
  const int32_t need = blocks_for(total_tokens);
  int32_t extra = 0, reclaimed = 0;
  // Blocks this step writes into that other sequences share (a forked partial block) are copied.
  std::vector<std::pair<size_t, size_t>> to_copy;  // (group, block index)
  for (size_t g = 0; g < G; ++g) {
    const std::vector<int32_t>* have = is_new ? (cached_blocks.empty() ? nullptr : &cached_blocks[g]) : &it->second[g].blocks;
    const int32_t size = have ? static_cast<int32_t>(have->size()) : 0;
    extra += std::max<int32_t>(0, need - size);
    if (!have) continue;
    // Cached blocks that sit in the free queue are taken out of it by touch(): count them too.
    if (is_new)
      for (int32_t b : *have)
        if (b != kNoBlock && pool_.ref_count(b) == 0) ++reclaimed;
    if (!is_new) {
      const size_t first_written = static_cast<size_t>(num_computed_tokens / block_size_);
      const size_t end = std::min(have->size(), static_cast<size_t>(need));
      for (size_t b = first_written; b < end; ++b)
        if ((*have)[b] != kNoBlock && pool_.ref_count((*have)[b]) > 1) to_copy.emplace_back(g, b);
    }
  }
  if (extra + reclaimed + static_cast<int32_t>(to_copy.size()) > pool_.num_free_blocks()) return false;

  if (is_new) {
    it = seqs_.emplace(seq_id, Sequence(G)).first;
    for (size_t g = 0; g < G && !cached_blocks.empty(); ++g) {
      std::vector<int32_t> held;
      for (int32_t b : cached_blocks[g])
        if (b != kNoBlock) held.push_back(b);
      pool_.touch(held);
      // Cached blocks' hashes are recomputed lazily below (they are already registered).
      it->second[g].blocks = cached_blocks[g];
    }
  }
  Sequence& s = it->second;
  for (const auto& [g, b] : to_copy) {
    int32_t& entry = s[g].blocks[b];
    const int32_t shared = entry;
    const int32_t own = pool_.allocate(1)[0];
    pending_copies_.emplace_back(shared, own);
    ++num_block_copies_total_;
    pool_.release({shared});  // still held by the other sharers
    entry = own;
  }
  for (size_t g = 0; g < G; ++g) {
    GroupTable& table = s[g];
    const int32_t missing = need - static_cast<int32_t>(table.blocks.size());
    if (missing > 0) {
      std::vector<int32_t> fresh = pool_.allocate(missing);
      table.blocks.insert(table.blocks.end(), fresh.begin(), fresh.end());
    }
    if (!enable_caching_) continue;
    // Register every block that is full once this step's tokens are written (a sliding group's
    // passed blocks keep their place in the chain but are not registered again).
    const int64_t full = std::min<int64_t>(total_tokens, static_cast<int64_t>(tokens.size())) / block_size_;
    BlockHash parent = table.hashes.empty() ? root_hash(salt, static_cast<int>(g)) : table.hashes.back();
    // Events: each run of blocks newly cached here is one BlockStored (as vLLM's
    // cache_full_blocks), its first block's parent named unless it starts the prompt.
    const bool report = g == 0 && pool_.recording_events();
    KVCacheEvent run;  // the BlockStored being extended (no hashes yet: none)
    auto end_run = [&] {
      if (!run.block_hashes.empty()) pool_.add_event(std::move(run));
      run = KVCacheEvent();
    };
    for (int64_t b = static_cast<int64_t>(table.hashes.size()); b < full; ++b) {
      const int32_t* t = tokens.data() + b * block_size_;
      const BlockHash h = hash_block(parent, t, static_cast<size_t>(block_size_), 0);
      const int32_t block = table.blocks[static_cast<size_t>(b)];
      const bool stored = block != kNoBlock && pool_.cache(block, h, parent, t, report);
      if (report && stored) {
        if (run.block_hashes.empty()) {
          run.kind = KVCacheEvent::Kind::kBlockStored;
          if (b > 0) run.parent_block_hash = parent;
          run.block_size = block_size_;
        }
        run.block_hashes.push_back(h);
        run.token_ids.insert(run.token_ids.end(), t, t + block_size_);
      } else {
        end_run();
      }
      table.hashes.push_back(h);
      parent = h;
    }
    end_run();
  }
  return true;
}

void KVCacheManager::fork(uint64_t parent_id, uint64_t child_id) {
  auto parent = seqs_.find(parent_id);
  VLLM_CHECK(parent != seqs_.end(), "fork of a sequence without blocks");
  VLLM_CHECK(!seqs_.count(child_id), "fork into a sequence that already has blocks");
  Sequence child = parent->second;  // the same blocks and registered hashes
  for (const GroupTable& table : child) {
    std::vector<int32_t> held;
    for (int32_t b : table.blocks)
      if (b != kNoBlock) held.push_back(b);
    pool_.touch(held);
  }
  seqs_.emplace(child_id, std::move(child));
}

std::vector<std::pair<int32_t, int32_t>> KVCacheManager::take_block_copies() {
  std::vector<std::pair<int32_t, int32_t>> out;
  out.swap(pending_copies_);
  return out;
}

void KVCacheManager::free(uint64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return;
  for (const GroupTable& table : it->second) {
    std::vector<int32_t> reversed;
    for (auto b = table.blocks.rbegin(); b != table.blocks.rend(); ++b)
      if (*b != kNoBlock) reversed.push_back(*b);
    pool_.release(reversed);
  }
  seqs_.erase(it);
}

const std::vector<int32_t>& KVCacheManager::block_table(uint64_t seq_id, int group) const {
  auto it = seqs_.find(seq_id);
  VLLM_CHECK(it != seqs_.end(), "unknown sequence");
  VLLM_CHECK(group >= 0 && group < num_groups(), "unknown KV cache group");
  return it->second[static_cast<size_t>(group)].blocks;
}

int32_t KVCacheManager::num_blocks_held(uint64_t seq_id) const {
  int32_t n = 0;
  for (int g = 0; g < num_groups(); ++g)
    for (int32_t b : block_table(seq_id, g)) n += b != kNoBlock;
  return n;
}

std::string KVCacheManager::check_invariants() const {
  std::vector<int32_t> refs(static_cast<size_t>(pool_.num_blocks()), 0);
  for (const auto& [id, seq] : seqs_) {
    if (seq.size() != windows_.size()) return "sequence " + std::to_string(id) + " has a table per group missing";
    for (size_t g = 0; g < seq.size(); ++g)
      for (int32_t b : seq[g].blocks) {
        if (b == kNoBlock && windows_[g] > 0) continue;
        if (b < 0 || b >= pool_.num_blocks()) return "sequence " + std::to_string(id) + " holds an invalid block";
        ++refs[static_cast<size_t>(b)];
      }
  }
  for (int32_t b = 0; b < pool_.num_blocks(); ++b)
    if (refs[static_cast<size_t>(b)] != pool_.ref_count(b))
      return "block " + std::to_string(b) + " has reference count " + std::to_string(pool_.ref_count(b)) + " but " +
             std::to_string(refs[static_cast<size_t>(b)]) + " block-table entries";
  std::vector<char> seen(static_cast<size_t>(pool_.num_blocks()), 0);
  int32_t n = 0;
  for (int32_t b : pool_.free_queue()) {
    if (seen[static_cast<size_t>(b)]++) return "block " + std::to_string(b) + " is in the free queue twice";
    if (pool_.ref_count(b) != 0) return "block " + std::to_string(b) + " is referenced but in the free queue";
    ++n;
  }
  for (int32_t b = 0; b < pool_.num_blocks(); ++b)
    if (pool_.ref_count(b) == 0 && !seen[static_cast<size_t>(b)]) return "free block " + std::to_string(b) + " is lost";
  if (n != pool_.num_free_blocks()) return "free count " + std::to_string(pool_.num_free_blocks()) + " != queue length";
  return "";
}

PrefixCacheStats KVCacheManager::take_stats() {
  PrefixCacheStats s = recent_;
  recent_ = {};
  return s;
}

}  // namespace vllm

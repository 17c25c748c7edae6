#include "vllm/structured/grammar_cache.h"

#include <cstdint>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "vllm/core/error.h"

namespace vllm::structured {

struct GrammarCache::Impl {
  struct Entry {
    Future future;
    bool ready = false;
    size_t bytes = 0;
    uint64_t generation = 0;  // tells a re-created entry from the one a task was started for
    std::list<std::string>::iterator lru;
  };
  struct Task {
    std::string key;
    uint64_t generation;
    std::string text;
    std::shared_ptr<const TokenVocabulary> vocab;
    ToGbnf to_gbnf;
    std::shared_ptr<std::promise<std::shared_ptr<const CompiledGrammar>>> promise;
  };

  GrammarCacheOptions options;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<std::string, Entry> entries;
  std::list<std::string> lru;  // most recent first
  std::deque<Task> queue;
  std::vector<std::thread> workers;
  bool stopping = false;
  size_t bytes = 0;
  size_t running = 0;
  uint64_t next_generation = 1;
  GrammarCacheStats counters;

  void touch(Entry& e) { lru.splice(lru.begin(), lru, e.lru); }

  void erase(std::unordered_map<std::string, Entry>::iterator it) {
    if (it->second.ready) bytes -= it->second.bytes;
    lru.erase(it->second.lru);
    entries.erase(it);
  }

  // Evicts least recently used ready entries until within bounds (compiling ones stay).
  void trim() {
    auto over = [&] { return entries.size() > options.max_entries || bytes > options.max_bytes; };
    auto it = lru.end();  // the walk goes from the oldest entry towards the newest
    while (over() && it != lru.begin()) {
      const auto cur = std::prev(it);
      auto e = entries.find(*cur);
      if (!e->second.ready) {
        it = cur;
        continue;
      }
      erase(e);  // removes `cur` only: `it` stays valid
      ++counters.evictions;
    }
  }

  void work() {
    for (;;) {
      Task task;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping) return;
        task = std::move(queue.front());
        queue.pop_front();
        ++running;
      }
      std::shared_ptr<const CompiledGrammar> grammar;
      std::exception_ptr error;
      try {
        const std::string gbnf = task.to_gbnf ? task.to_gbnf(task.text) : task.text;
        grammar = CompiledGrammar::from_gbnf(gbnf, task.vocab, options.compile);
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        --running;
        auto it = entries.find(task.key);
        const bool ours = it != entries.end() && it->second.generation == task.generation;
        if (error) {
          ++counters.failures;
          if (ours) erase(it);
        } else if (ours) {
          it->second.ready = true;
          it->second.bytes = grammar->memory_bytes();
          bytes += it->second.bytes;
          trim();
        }
      }
      if (error) {
        task.promise->set_exception(error);
      } else {
        task.promise->set_value(std::move(grammar));
      }
    }
  }
};

GrammarCache::GrammarCache(GrammarCacheOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  const int n = std::max(1, impl_->options.compile_threads);
  for (int i = 0; i < n; ++i) impl_->workers.emplace_back([this] { impl_->work(); });
}

GrammarCache::~GrammarCache() {
  std::deque<Impl::Task> pending;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    pending.swap(impl_->queue);
  }
  impl_->cv.notify_all();
  // Queued requests learn at once; then the running compilations are waited for.
  for (Impl::Task& task : pending) {
    task.promise->set_exception(std::make_exception_ptr(
        Error("grammar cache closed before the grammar was compiled", ErrorKind::kInternal)));
  }
  for (auto& t : impl_->workers) t.join();
}

GrammarCache::Future GrammarCache::get(std::string_view kind, std::string_view text,
                                       std::shared_ptr<const TokenVocabulary> vocab, ToGbnf to_gbnf) {
  // The key: kind and vocabulary first (short), then the text itself, so equal texts under
  // another tokenizer or front end never meet.
  std::string key;
  key.reserve(kind.size() + text.size() + 24);
  key.append(kind);
  key.push_back('\0');
  key.append(std::to_string(vocab ? vocab->uid() : 0));
  key.push_back('\0');
  key.append(text);
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->stopping) throw Error("grammar cache is closed", ErrorKind::kInternal);
  auto it = impl_->entries.find(key);
  if (it != impl_->entries.end()) {
    ++impl_->counters.hits;
    impl_->touch(it->second);
    return it->second.future;
  }
  ++impl_->counters.misses;
  auto promise = std::make_shared<std::promise<std::shared_ptr<const CompiledGrammar>>>();
  Impl::Entry e;
  e.future = promise->get_future().share();
  e.generation = impl_->next_generation++;
  impl_->lru.push_front(key);
  e.lru = impl_->lru.begin();
  Future f = e.future;
  const uint64_t generation = e.generation;
  impl_->entries.emplace(key, std::move(e));
  impl_->queue.push_back({std::move(key), generation, std::string(text), std::move(vocab), std::move(to_gbnf),
                          std::move(promise)});
  impl_->trim();
  impl_->cv.notify_one();
  return f;
}

GrammarCacheStats GrammarCache::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  GrammarCacheStats s = impl_->counters;
  s.entries = impl_->entries.size();
  s.bytes = impl_->bytes;
  s.compiling = impl_->queue.size() + impl_->running;
  return s;
}

void GrammarCache::clear() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (auto it = impl_->entries.begin(); it != impl_->entries.end();) {
    if (it->second.ready) {
      auto next = std::next(it);
      impl_->erase(it);
      it = next;
    } else {
      ++it;
    }
  }
}

}  // namespace vllm::structured

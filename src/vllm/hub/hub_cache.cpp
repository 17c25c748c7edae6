#include "vllm/hub/hub_cache.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "vllm/core/error.h"

namespace vllm::hub {

namespace fs = std::filesystem;

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// Python's os.path.expanduser for the "~" and "~/..." forms users put in these variables.
fs::path expand_user(const std::string& p) {
  if (p == "~" || p.rfind("~/", 0) == 0) {
    std::string home = env_or_empty("HOME");
    if (!home.empty()) return fs::path(home) / p.substr(p.size() > 1 ? 2 : 1);
  }
  return fs::path(p);
}

}  // namespace

fs::path hf_home_dir() {
  std::string home = env_or_empty("HF_HOME");
  if (!home.empty()) return expand_user(home);
  std::string xdg = env_or_empty("XDG_CACHE_HOME");
  return expand_user(xdg.empty() ? "~/.cache" : xdg) / "huggingface";
}

fs::path hub_cache_dir(const std::string& download_dir) {
  if (!download_dir.empty()) return expand_user(download_dir);
  for (const char* var : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"}) {
    std::string v = env_or_empty(var);
    if (!v.empty()) return expand_user(v);
  }
  return hf_home_dir() / "hub";
}

std::string repo_folder_name(const std::string& repo_id) {
  std::string out = "models";
  size_t start = 0;
  while (true) {
    size_t slash = repo_id.find('/', start);
    out += "--" + repo_id.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

bool is_commit_hash(const std::string& revision) {
  if (revision.size() != 40) return false;
  for (char c : revision)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

RepoCache::RepoCache(const fs::path& cache_dir, const std::string& repo_id)
    : root_(cache_dir / repo_folder_name(repo_id)) {}

std::optional<std::string> RepoCache::commit_for(const std::string& revision) const {
  if (is_commit_hash(revision)) return revision;
  std::ifstream in(ref_file(revision));
  std::string commit;
  if (!in || !std::getline(in, commit)) return std::nullopt;
  while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
  if (!is_commit_hash(commit)) return std::nullopt;
  return commit;
}

void RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return;
  fs::path ref = ref_file(revision);
  fs::create_directories(ref.parent_path());
  // Written whole then renamed, so a reader never sees half a hash. No newline: huggingface_hub
  // writes the bare hash.
  fs::path tmp = ref;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << commit;
    if (!out) throw Error("cannot write " + tmp.string(), ErrorKind::kModelLoad);
  }
  fs::rename(tmp, ref);
}

void RepoCache::link_snapshot_file(const std::string& commit, const std::string& file,
                                   const std::string& blob_name) const {
  fs::path link = snapshot_dir(commit) / file;
  fs::create_directories(link.parent_path());
  // Relative, so that the cache folder can be moved or mounted elsewhere and stay valid.
  fs::path target = fs::relative(blobs_dir() / blob_name, link.parent_path());
  std::error_code ec;
  fs::remove(link, ec);
  fs::create_symlink(target, link);
}

namespace {
// std::filesystem's checks without the exceptions (an overlong name or a symlink loop in the
// cache reads as "not there", so the model is fetched again or the caller says it is missing).
bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}
}  // namespace

bool snapshot_is_complete(const fs::path& snapshot) {
  if (!is_file(snapshot / "config.json")) return false;
  fs::path index = snapshot / "model.safetensors.index.json";
  std::error_code ec;
  if (fs::exists(index, ec)) {
    if (!is_file(index)) return false;  // a dangling symlink: its blob is gone
    try {
      std::ifstream in(index);
      nlohmann::json j = nlohmann::json::parse(in);
      std::set<std::string> shards;
      for (const auto& [tensor, shard] : j.at("weight_map").items()) shards.insert(shard.get<std::string>());
      for (const auto& shard : shards)
        if (!is_file(snapshot / shard)) return false;
      return !shards.empty();
    } catch (const std::exception&) {
      return false;
    }
  }
  for (const auto& entry : fs::directory_iterator(snapshot, ec))
    if (entry.path().extension() == ".safetensors" && is_file(entry.path())) return true;
  return false;
}

std::optional<fs::path> cached_snapshot(const fs::path& cache_dir, const std::string& repo_id,
                                        const std::string& revision) {
  RepoCache repo(cache_dir, repo_id);
  auto commit = repo.commit_for(revision);
  if (!commit) return std::nullopt;
  fs::path snapshot = repo.snapshot_dir(*commit);
  if (!is_file(snapshot / "config.json")) return std::nullopt;
  return snapshot;
}

}  // namespace vllm::hub

// The Hugging Face Hub cache on disk, laid out exactly as huggingface_hub lays it out, so that a
// model downloaded by either tool is found by the other:
//
//   <cache>/models--<org>--<name>/blobs/<etag>            file contents, named by ETag or sha256
//   <cache>/models--<org>--<name>/snapshots/<commit>/<f>  relative symlinks into ../../blobs/
//   <cache>/models--<org>--<name>/refs/<revision>         the commit a branch or tag points at
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace vllm::hub {

// --download-dir when given, else $HF_HUB_CACHE (or the older $HUGGINGFACE_HUB_CACHE), else
// $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
std::filesystem::path hub_cache_dir(const std::string& download_dir = "");
// $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (where the token lives).
std::filesystem::path hf_home_dir();

// "org/name" -> "models--org--name".
std::string repo_folder_name(const std::string& repo_id);
// A full 40-character lowercase hex commit hash (what huggingface_hub treats as a commit).
bool is_commit_hash(const std::string& revision);

// One repository's folder in the cache.
class RepoCache {
 public:
  RepoCache(const std::filesystem::path& cache_dir, const std::string& repo_id);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path blobs_dir() const { return root_ / "blobs"; }
  std::filesystem::path snapshot_dir(const std::string& commit) const { return root_ / "snapshots" / commit; }
  std::filesystem::path ref_file(const std::string& revision) const { return root_ / "refs" / revision; }

  // The commit `revision` names: itself when it is a commit hash, else refs/<revision>.
  std::optional<std::string> commit_for(const std::string& revision) const;
  // refs/<revision> := commit (not written for a revision that is itself the commit).
  void write_ref(const std::string& revision, const std::string& commit) const;
  // snapshots/<commit>/<file> -> the blob, as a relative symlink (replacing what was there).
  void link_snapshot_file(const std::string& commit, const std::string& file, const std::string& blob_name) const;

 private:
  std::filesystem::path root_;
};

// A snapshot folder the engine can load: config.json, and the weights the loader opens (every shard
// model.safetensors.index.json names, else at least one .safetensors file), all resolving.
bool snapshot_is_complete(const std::filesystem::path& snapshot);

// The cached model folder for repo_id@revision when it has config.json, else nothing.
std::optional<std::filesystem::path> cached_snapshot(const std::filesystem::path& cache_dir, const std::string& repo_id,
                                                     const std::string& revision);

}  // namespace vllm::hub

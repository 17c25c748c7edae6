// Downloading a model from the Hugging Face Hub into the cache (hub_cache.h), with the endpoints,
// headers and environment variables huggingface_hub uses: HF_ENDPOINT, HF_TOKEN (or the token file
// `huggingface-cli login` writes), HF_HUB_OFFLINE, HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "vllm/core/error.h"
#include "vllm/hub/hub_cache.h"

namespace vllm::hub {

// The Hub could not be reached at all (as opposed to answering with an error status). Callers may
// fall back to the cache on this, as huggingface_hub does.
class HubConnectionError : public Error {
 public:
  explicit HubConnectionError(const std::string& message) : Error(message, ErrorKind::kModelLoad) {}
};

struct HubSettings {
  std::string endpoint = "https://huggingface.co";  // no trailing slash
  std::string token;                                // empty: anonymous requests
  bool offline = false;
  long metadata_timeout_s = 10;
  long download_timeout_s = 10;

  static HubSettings from_env();
};

// huggingface_hub's notion of a true environment value: 1, ON, YES or TRUE, any case.
bool env_flag_is_true(const char* name);

struct RepoRevisionInfo {
  std::string commit;              // the `sha` the revision resolves to
  std::vector<std::string> files;  // every `siblings[].rfilename`
};

// GET {endpoint}/api/models/{repo}/revision/{revision}.
RepoRevisionInfo fetch_revision_info(const HubSettings& hub, const std::string& repo_id, const std::string& revision);

// Of a repository's files, those the engine reads, top level only: configs, tokenizer files, the
// chat template and the weights. With a model.safetensors.index.json the shards are not listed
// here: they are the ones the index names (so duplicates like consolidated.safetensors are skipped).
std::vector<std::string> model_files_to_download(const std::vector<std::string>& repo_files);

// {endpoint}/{repo}/resolve/{commit}/{file} into blobs/ and snapshots/<commit>/<file>, resuming a
// partial blobs/<name>.incomplete. Nothing is fetched when the snapshot already has the file.
std::filesystem::path download_repo_file(const HubSettings& hub, const RepoCache& repo, const std::string& repo_id,
                                         const std::string& commit, const std::string& file);

// Every file the model needs at `revision`, then refs/<revision>; returns the snapshot folder.
std::filesystem::path download_model_snapshot(const HubSettings& hub, const std::filesystem::path& cache_dir,
                                              const std::string& repo_id, const std::string& revision);

}  // namespace vllm::hub

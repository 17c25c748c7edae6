#include "vllm/hub/resolve_hub_model.h"

#include <algorithm>
#include <cctype>

#include "vllm/core/error.h"
#include "vllm/core/logging.h"
#include "vllm/hub/hub_cache.h"
#include "vllm/hub/hub_download.h"

namespace vllm::hub {

namespace fs = std::filesystem;

namespace {
bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// One part of huggingface_hub's REPO_ID_REGEX ^(\b[\w\-.]+\b/)?\b[\w\-.]{1,96}\b$.
bool is_valid_repo_part(const std::string& part, size_t max_len) {
  if (part.empty() || part.size() > max_len || !is_word_char(part.front()) || !is_word_char(part.back())) return false;
  for (char c : part)
    if (!is_word_char(c) && c != '-' && c != '.') return false;
  return true;
}
}  // namespace

std::string repo_id_error(const std::string& repo_id) {
  const size_t slashes = static_cast<size_t>(std::count(repo_id.begin(), repo_id.end(), '/'));
  if (slashes > 1)
    return "Repo id must be in the form 'repo_name' or 'namespace/repo_name': '" + repo_id +
           "'. Use `repo_type` argument if needed.";
  const size_t slash = repo_id.find('/');
  const bool ok = slash == std::string::npos
                      ? is_valid_repo_part(repo_id, 96)
                      : is_valid_repo_part(repo_id.substr(0, slash), std::string::npos) &&
                            is_valid_repo_part(repo_id.substr(slash + 1), 96);
  if (!ok)
    return "Repo id must use alphanumeric chars, '-', '_' or '.'. The name cannot start or end with '-' or '.' and "
           "the maximum length is 96: '" + repo_id + "'.";
  if (repo_id.find("--") != std::string::npos || repo_id.find("..") != std::string::npos)
    return "Cannot have -- or .. in repo_id: '" + repo_id + "'.";
  if (repo_id.size() >= 4 && repo_id.compare(repo_id.size() - 4, 4, ".git") == 0)
    return "Repo_id cannot end by '.git': '" + repo_id + "'.";
  return "";
}

bool is_valid_repo_id(const std::string& repo_id) { return repo_id_error(repo_id).empty(); }

std::string resolve_hub_model(const std::string& repo_id, const std::string& revision_arg,
                              const std::string& download_dir) {
  // Checked before any path is built from it: the cache folder's name embeds the id.
  if (const std::string why = repo_id_error(repo_id); !why.empty()) throw Error(why, ErrorKind::kNotFound);
  const std::string revision = revision_arg.empty() ? "main" : revision_arg;
  const fs::path cache_dir = hub_cache_dir(download_dir);
  const HubSettings hub = HubSettings::from_env();

  if (hub.offline) {
    if (auto snapshot = cached_snapshot(cache_dir, repo_id, revision)) return snapshot->string();
    throw Error("HF_HUB_OFFLINE is set and model '" + repo_id + "' at revision '" + revision +
                    "' is not in the Hugging Face cache " + cache_dir.string() +
                    "; download it once without HF_HUB_OFFLINE, or point HF_HUB_CACHE (or --download-dir) at the cache "
                    "that has it",
                ErrorKind::kNotFound);
  }

  // A complete snapshot is used without asking the Hub, so that a cached model starts with no
  // network round trip and works behind a firewall.
  RepoCache repo(cache_dir, repo_id);
  if (auto commit = repo.commit_for(revision)) {
    fs::path snapshot = repo.snapshot_dir(*commit);
    if (snapshot_is_complete(snapshot)) {
      VLLM_LOG_DEBUG("model '{}' at revision '{}' found in the cache: {}", repo_id, revision, snapshot.string());
      return snapshot.string();
    }
  }
  try {
    return download_model_snapshot(hub, cache_dir, repo_id, revision).string();
  } catch (const HubConnectionError& e) {
    // As huggingface_hub does: with the Hub unreachable, a cached snapshot still serves.
    if (auto snapshot = cached_snapshot(cache_dir, repo_id, revision)) {
      VLLM_LOG_WARN("{}; using the cached snapshot {}", e.what(), snapshot->string());
      return snapshot->string();
    }
    throw;
  }
}

}  // namespace vllm::hub

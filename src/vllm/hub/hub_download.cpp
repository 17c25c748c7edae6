#include "vllm/hub/hub_download.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "vllm/core/logging.h"
#include "vllm/hub/download_progress.h"
#include "vllm/hub/http_client.h"
#include "vllm/hub/sha256.h"

namespace vllm::hub {

namespace fs = std::filesystem;

namespace {

// A dropped or stalled connection is retried this many times, each attempt resuming where the
// previous one stopped (huggingface_hub retries five times too).
constexpr int kMaxAttempts = 5;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

long env_seconds(const char* name, long fallback) {
  std::string v = env_or_empty(name);
  if (v.empty()) return fallback;
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || d <= 0) return fallback;
  return std::max(1L, static_cast<long>(d + 0.5));
}

std::vector<std::string> request_headers(const HubSettings& hub) {
  std::vector<std::string> h;
  if (!hub.token.empty()) h.push_back("Authorization: Bearer " + hub.token);
  return h;
}

// "W/\"abc\"" -> "abc": the blob name huggingface_hub derives from an ETag.
// A name that stays inside the folder it is joined to: what the Hub sends (file names in an
// index, ETags that name blobs) is outside input, and "../x" must not write outside the cache.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

std::string normalize_etag(std::string etag) {
  etag = trim(etag);
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

// An HTTP error as a message that says what to do about it.
[[noreturn]] void throw_http_error(const HttpResponse& r, const std::string& url, const std::string& repo_id,
                                   const std::string& revision, const std::string& file) {
  std::string what = "model '" + repo_id + "' at revision '" + revision + "'" + (file.empty() ? "" : ", file '" + file + "'");
  std::string hub_message = r.header("x-error-message").value_or("");
  std::string detail = hub_message.empty() ? "" : " (" + hub_message + ")";
  std::string code = r.header("x-error-code").value_or("");
  std::string status = std::to_string(r.status);
  if (r.status == 401)
    throw Error("HTTP 401 Unauthorized from " + url + " for " + what + detail +
                    ": the repository is private or gated, or does not exist. Set HF_TOKEN to a Hugging Face "
                    "access token that can read it (https://huggingface.co/settings/tokens).",
                ErrorKind::kNotFound);
  if (r.status == 403)
    throw Error("HTTP 403 Forbidden from " + url + " for " + what + detail +
                    ": the token in HF_TOKEN may not read this repository (a gated model needs its terms accepted "
                    "on the Hub, and a fine-grained token needs read access to it).",
                ErrorKind::kNotFound);
  if (r.status == 404) {
    std::string which = code == "EntryNotFound"      ? "file '" + file + "' was not found in"
                        : code == "RevisionNotFound" ? "revision '" + revision + "' was not found in"
                                                     : "repository or revision was not found:";
    throw Error("HTTP 404 Not Found from " + url + ": the " + which + " model '" + repo_id + "' at revision '" +
                    revision + "'" + detail + ". Check the model id and --revision.",
                ErrorKind::kNotFound);
  }
  std::string body = r.body.substr(0, 300);
  throw Error("HTTP " + status + " from " + url + " for " + what + detail + (body.empty() ? "" : ": " + body),
              ErrorKind::kModelLoad);
}

// Runs a request, retrying transport failures (not HTTP errors) with a short backoff.
HttpResponse perform_with_retries(HttpRequest request, const HubSettings& hub, const std::string& what) {
  HttpTransportError error;
  for (int attempt = 1;; ++attempt) {
    if (auto r = http_perform(request, nullptr, nullptr, error)) return *r;
    if (!error.retryable || attempt == kMaxAttempts)
      throw HubConnectionError("cannot reach the Hugging Face Hub at " + hub.endpoint + " for " + what + ": " +
                               error.message + " (set HF_HUB_OFFLINE=1 to use only the local cache)");
    VLLM_LOG_WARN("{}: {}; retrying ({}/{})", what, error.message, attempt, kMaxAttempts - 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
  }
}

// HEAD of a file's resolve URL, following only relative redirects (a renamed repository), as
// huggingface_hub does: the absolute redirect to the CDN already carries X-Linked-Etag and
// X-Linked-Size, and a HEAD to a presigned CDN URL (signed for GET) may be refused.
HttpResponse fetch_file_metadata(const HubSettings& hub, const std::string& url, const std::string& what) {
  HttpRequest head{url, request_headers(hub)};
  head.head_only = true;
  head.follow_redirects = false;
  head.connect_timeout_s = hub.metadata_timeout_s;
  head.stall_timeout_s = hub.metadata_timeout_s;
  for (int hop = 0;; ++hop) {
    HttpResponse r = perform_with_retries(head, hub, what);
    auto location = r.final_header("location");
    bool relative = location && !location->empty() && location->front() == '/';
    if (r.status < 300 || r.status >= 400 || !relative || hop == 10) return r;
    size_t scheme = head.url.find("://");
    size_t path = head.url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    head.url = head.url.substr(0, path) + *location;  // same scheme and host, new path
  }
}

uint64_t file_size_or_zero(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : static_cast<uint64_t>(n);
}

// An exclusive flock held for the object's life, so two processes downloading the same blob take
// turns (the second finds the blob done), like huggingface_hub's .locks/ folder.
class BlobLock {
 public:
  explicit BlobLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error("cannot create the lock file " + path.string(), ErrorKind::kModelLoad);
    if (::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      throw Error("cannot lock " + path.string(), ErrorKind::kModelLoad);
    }
  }
  ~BlobLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  BlobLock(const BlobLock&) = delete;
  BlobLock& operator=(const BlobLock&) = delete;

 private:
  int fd_ = -1;
};

// The body of one file into `incomplete`, appending to what a previous attempt left there.
void fetch_into_incomplete(const HubSettings& hub, const std::string& url, const fs::path& incomplete,
                           uint64_t expected_size, const std::string& repo_id, const std::string& revision,
                           const std::string& file) {
  for (int attempt = 1;; ++attempt) {
    uint64_t offset = file_size_or_zero(incomplete);
    if (expected_size > 0 && offset == expected_size) return;  // a previous run stopped right at the end
    if (expected_size > 0 && offset > expected_size) {
      fs::remove(incomplete);
      offset = 0;
    }
    FILE* out = std::fopen(incomplete.c_str(), "ab");
    if (!out) throw Error("cannot write " + incomplete.string(), ErrorKind::kModelLoad);
    uint64_t written = offset;
    bool checked_resume = false;
    bool write_failed = false;
    DownloadProgress progress(file, expected_size, offset);
    BodySink sink = [&](long status, const char* data, size_t size) {
      if (!checked_resume) {
        checked_resume = true;
        // A server that ignores Range answers 200 with the whole file: start over.
        if (status == 200 && offset > 0) {
          std::fflush(out);
          if (::ftruncate(::fileno(out), 0) != 0) return !(write_failed = true);
          written = 0;
        }
      }
      if (std::fwrite(data, 1, size, out) != size) return !(write_failed = true);
      written += size;
      return true;
    };
    ProgressFn on_progress = [&](uint64_t, uint64_t) { progress.update(written); };
    HttpRequest request{url, request_headers(hub)};
    request.range_start = offset;
    request.connect_timeout_s = hub.download_timeout_s;
    request.stall_timeout_s = hub.download_timeout_s;
    HttpTransportError error;
    std::optional<HttpResponse> r = http_perform(request, sink, on_progress, error);
    bool flushed = std::fclose(out) == 0;
    if (write_failed || !flushed)
      throw Error("cannot write " + incomplete.string() + " (disk full?)", ErrorKind::kModelLoad);
    if (!r) {
      if (!error.retryable || attempt == kMaxAttempts)
        throw HubConnectionError("downloading '" + file + "' of model '" + repo_id + "' from " + url +
                                 " failed: " + error.message + " (" + std::to_string(file_size_or_zero(incomplete)) +
                                 " bytes kept in " + incomplete.string() + "; running again resumes)");
      VLLM_LOG_WARN("download of {} interrupted at {} bytes ({}); resuming ({}/{})", file,
                    file_size_or_zero(incomplete), error.message, attempt, kMaxAttempts - 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(250 << attempt));
      continue;
    }
    if (r->status == 416) {
      // The range starts past the end: what is on disk is not a prefix of this file. Start over.
      fs::remove(incomplete);
      if (attempt == kMaxAttempts) throw_http_error(*r, url, repo_id, revision, file);
      continue;
    }
    if (r->status >= 400) throw_http_error(*r, url, repo_id, revision, file);
    progress.finish(written);
    uint64_t got = file_size_or_zero(incomplete);
    if (expected_size > 0 && got != expected_size)
      throw Error("downloading '" + file + "' of model '" + repo_id + "' gave " + std::to_string(got) +
                      " bytes where the Hub announced " + std::to_string(expected_size),
                  ErrorKind::kModelLoad);
    return;
  }
}

bool is_model_file(const std::string& name) {
  static const std::set<std::string> kNamed = {
      "config.json",          "generation_config.json", "model.safetensors.index.json", "tokenizer.json",
      "tokenizer_config.json", "vocab.json",            "merges.txt",                   "special_tokens_map.json",
      "chat_template.jinja"};
  return kNamed.count(name) > 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool env_flag_is_true(const char* name) {
  std::string s = env_or_empty(name);
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s == "1" || s == "ON" || s == "YES" || s == "TRUE";
}

HubSettings HubSettings::from_env() {
  HubSettings s;
  std::string endpoint = env_or_empty("HF_ENDPOINT");
  if (!endpoint.empty()) s.endpoint = endpoint;
  while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();
  s.token = trim(env_or_empty("HF_TOKEN"));
  if (s.token.empty()) s.token = trim(env_or_empty("HUGGING_FACE_HUB_TOKEN"));
  if (s.token.empty()) {
    // The file `huggingface-cli login` writes.
    std::string path = env_or_empty("HF_TOKEN_PATH");
    std::ifstream in(path.empty() ? hf_home_dir() / "token" : fs::path(path));
    std::string line;
    if (in && std::getline(in, line)) s.token = trim(line);
  }
  s.offline = env_flag_is_true("HF_HUB_OFFLINE");
  s.metadata_timeout_s = env_seconds("HF_HUB_ETAG_TIMEOUT", 10);
  s.download_timeout_s = env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10);
  return s;
}

RepoRevisionInfo fetch_revision_info(const HubSettings& hub, const std::string& repo_id, const std::string& revision) {
  std::string url = hub.endpoint + "/api/models/" + repo_id + "/revision/" + url_quote(revision, "");
  HttpRequest request{url, request_headers(hub)};
  request.connect_timeout_s = hub.metadata_timeout_s;
  request.stall_timeout_s = hub.metadata_timeout_s;
  HttpResponse r = perform_with_retries(request, hub, "model '" + repo_id + "'");
  if (r.status >= 400) throw_http_error(r, url, repo_id, revision, "");
  RepoRevisionInfo info;
  try {
    nlohmann::json j = nlohmann::json::parse(r.body);
    info.commit = j.at("sha").get<std::string>();
    for (const auto& s : j.value("siblings", nlohmann::json::array())) info.files.push_back(s.at("rfilename").get<std::string>());
  } catch (const std::exception& e) {
    throw Error("unexpected answer from " + url + " (not the Hub's model JSON with 'sha' and 'siblings'): " + e.what(),
                ErrorKind::kModelLoad);
  }
  if (!is_commit_hash(info.commit))
    throw Error("the Hub answered " + url + " with '" + info.commit + "', which is not a commit hash", ErrorKind::kModelLoad);
  return info;
}

std::vector<std::string> model_files_to_download(const std::vector<std::string>& repo_files) {
  bool has_index = std::find(repo_files.begin(), repo_files.end(), "model.safetensors.index.json") != repo_files.end();
  std::vector<std::string> out;
  for (const auto& f : repo_files) {
    // Files in subfolders (original/, onnx/, ...) are other formats of the model: never loaded.
    if (f.find('/') != std::string::npos) continue;
    if (is_model_file(f) || (!has_index && ends_with(f, ".safetensors"))) out.push_back(f);
  }
  return out;
}

fs::path download_repo_file(const HubSettings& hub, const RepoCache& repo, const std::string& repo_id,
                            const std::string& commit, const std::string& file) {
  if (!is_plain_file_name(file))
    throw Error("model '" + repo_id + "': refusing to download '" + file + "', which is not a file name inside the model folder",
                ErrorKind::kModelLoad);
  fs::path pointer = repo.snapshot_dir(commit) / file;
  if (fs::is_regular_file(pointer)) return pointer;  // a commit's files never change

  std::string url = hub.endpoint + "/" + repo_id + "/resolve/" + commit + "/" + url_quote(file);
  HttpResponse meta = fetch_file_metadata(hub, url, "'" + file + "' of model '" + repo_id + "'");
  if (meta.status >= 400) throw_http_error(meta, url, repo_id, commit, file);

  // For LFS files the Hub answers with a redirect carrying X-Linked-Etag (the sha256); the CDN's own
  // ETag that follows is not the name huggingface_hub gives the blob.
  std::string blob = normalize_etag(meta.final_header("x-linked-etag").value_or(meta.final_header("etag").value_or("")));
  if (!is_plain_file_name(blob)) blob.clear();  // not usable as a blob's name: named by its sha256 instead
  uint64_t expected_size = 0;
  if (auto linked = meta.final_header("x-linked-size")) expected_size = std::strtoull(linked->c_str(), nullptr, 10);
  else if (auto length = meta.final_header("content-length"); length && meta.status < 300)
    expected_size = std::strtoull(length->c_str(), nullptr, 10);

  fs::create_directories(repo.blobs_dir());
  // Without an ETag the name is known only once the content is: stage under a name fixed by what
  // is downloaded, so that an interrupted download still resumes.
  std::string staging = blob.empty() ? "unnamed-" + sha256_hex(commit + "/" + file) : blob;
  BlobLock lock(repo.root().parent_path() / ".locks" / repo.root().filename() / (staging + ".lock"));
  if (!blob.empty() && fs::is_regular_file(repo.blobs_dir() / blob)) {
    repo.link_snapshot_file(commit, file, blob);
    return pointer;
  }
  fs::path incomplete = repo.blobs_dir() / (staging + ".incomplete");
  fetch_into_incomplete(hub, url, incomplete, expected_size, repo_id, commit, file);
  if (blob.empty()) blob = sha256_file_hex(incomplete);
  fs::rename(incomplete, repo.blobs_dir() / blob);
  repo.link_snapshot_file(commit, file, blob);
  return pointer;
}

fs::path download_model_snapshot(const HubSettings& hub, const fs::path& cache_dir, const std::string& repo_id,
                                 const std::string& revision) {
  RepoRevisionInfo info = fetch_revision_info(hub, repo_id, revision);
  RepoCache repo(cache_dir, repo_id);
  std::vector<std::string> files = model_files_to_download(info.files);
  if (std::find(files.begin(), files.end(), "config.json") == files.end())
    throw Error("model '" + repo_id + "' at revision '" + revision + "' has no config.json on the Hub (" +
                    std::to_string(info.files.size()) + " files), so it is not a model vllm-cpp can load",
                ErrorKind::kModelLoad);
  VLLM_LOG_INFO("Downloading model '{}' (revision '{}', commit {}) into {}", repo_id, revision, info.commit,
                repo.root().string());

  // The index first (it names the shards to fetch); config.json last, so that a snapshot with a
  // config.json is one whose other files all arrived.
  std::vector<std::string> order;
  for (const auto& f : files)
    if (f == "model.safetensors.index.json") order.push_back(f);
  for (const auto& f : files)
    if (f != "model.safetensors.index.json" && f != "config.json") order.push_back(f);
  std::set<std::string> fetched;
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string f = order[i];  // a copy: `order` grows below
    fs::path local = download_repo_file(hub, repo, repo_id, info.commit, f);
    fetched.insert(f);
    if (f != "model.safetensors.index.json") continue;
    std::set<std::string> shards;
    try {
      std::ifstream in(local);
      const nlohmann::json index = nlohmann::json::parse(in);  // named: the loop must not outlive it
      for (const auto& [tensor, shard] : index.at("weight_map").items()) {
        shards.insert(shard.get<std::string>());
        if (!is_plain_file_name(shard.get<std::string>()))
          throw std::runtime_error("shard '" + shard.get<std::string>() + "' (for tensor '" + tensor +
                                   "') is not a file name inside the model folder");
      }
    } catch (const std::exception& e) {
      throw Error("model '" + repo_id + "': model.safetensors.index.json has no readable weight_map: " + e.what(),
                  ErrorKind::kModelLoad);
    }
    for (const auto& shard : shards)
      if (!fetched.count(shard)) order.insert(order.begin() + static_cast<long>(i) + 1, shard);
  }
  download_repo_file(hub, repo, repo_id, info.commit, "config.json");
  repo.write_ref(revision, info.commit);
  return repo.snapshot_dir(info.commit);
}

}  // namespace vllm::hub

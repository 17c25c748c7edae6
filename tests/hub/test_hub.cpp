// The Hub module against a fake Hub (fake_hub.py) on 127.0.0.1: the cache layout huggingface_hub
// writes, offline use, resumed downloads and the errors users see. No network beyond loopback.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "vllm/core/error.h"
#include "vllm/hub/hub_cache.h"
#include "vllm/hub/hub_download.h"
#include "vllm/hub/resolve_hub_model.h"
#include "vllm/hub/sha256.h"

extern char** environ;

namespace vllm::hub {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";
const std::string kOtherCommit = "fedcba9876543210fedcba9876543210fedcba98";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

// What git names a blob; the fake Hub's ETag for a small (non-LFS) file, as the real Hub's.
std::string git_blob_sha1_of(const std::string& data);

// The environment variables the module reads, cleared for each test and restored after.
const char* kHubVars[] = {"HF_HOME",        "HF_HUB_CACHE",   "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME",
                          "HF_TOKEN",       "HF_TOKEN_PATH",  "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE",
                          "HF_ENDPOINT",    "HOME",           "HF_HUB_DISABLE_PROGRESS_BARS"};

// Runs fake_hub.py with a manifest; stops it when destroyed.
class FakeHub {
 public:
  FakeHub(const fs::path& dir, const json& repos, const json& drop_once = json::object()) {
    log_ = dir / "requests.jsonl";
    json manifest = {{"log", log_.string()}, {"repos", repos}, {"drop_once", drop_once}};
    fs::path manifest_path = dir / "manifest.json";
    write_file(manifest_path, manifest.dump());
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
    posix_spawn_file_actions_addclose(&actions, to_child[1]);
    posix_spawn_file_actions_addclose(&actions, from_child[0]);
    std::string python = "/usr/bin/python3", script = VLLM_FAKE_HUB_SCRIPT, mp = manifest_path.string();
    char* argv[] = {python.data(), script.data(), mp.data(), nullptr};
    if (posix_spawn(&pid_, python.c_str(), &actions, nullptr, argv, environ) != 0)
      throw std::runtime_error("cannot start " + script);
    posix_spawn_file_actions_destroy(&actions);
    close(to_child[0]);
    close(from_child[1]);
    stdin_fd_ = to_child[1];
    FILE* out = fdopen(from_child[0], "r");
    char line[64] = {0};
    if (!out || !std::fgets(line, sizeof(line), out)) throw std::runtime_error("the fake Hub did not start");
    std::fclose(out);
    port_ = std::atoi(line);
  }
  ~FakeHub() { stop(); }

  void stop() {
    if (pid_ <= 0) return;
    close(stdin_fd_);  // the script exits when its stdin closes
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<json> requests() const {
    std::vector<json> out;
    std::ifstream in(log_);
    std::string line;
    while (std::getline(in, line)) out.push_back(json::parse(line));
    return out;
  }

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int port_ = 0;
  fs::path log_;
};

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kHubVars)
      if (const char* value = std::getenv(v)) saved_.emplace_back(v, value);
    for (const char* v : kHubVars) unsetenv(v);
    char tmpl[] = "/tmp/vllm_test_hub_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cache_ = dir_ / "cache";
    setenv("HOME", (dir_ / "home").c_str(), 1);
    setenv("HF_HUB_CACHE", cache_.c_str(), 1);
    setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1", 1);
  }
  void TearDown() override {
    hub_.reset();
    for (const char* v : kHubVars) unsetenv(v);
    for (const auto& [k, v] : saved_) setenv(k.c_str(), v.c_str(), 1);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A small model: two plain files, an LFS weights file, a file the engine does not need.
  json tiny_repo() {
    files_["config.json"] = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8})";
    files_["tokenizer.json"] = R"({"model": {"type": "BPE"}})";
    files_["model.safetensors"] = random_bytes(6000, 1);
    files_["README.md"] = "# tiny\n";
    json f = json::object();
    for (const auto& [name, data] : files_) {
      fs::path p = dir_ / "repo" / name;
      write_file(p, data);
      f[name] = {{"path", p.string()}, {"lfs", name == "model.safetensors"}};
    }
    return {{"commit", kCommit}, {"refs", {{"main", kCommit}}}, {"files", f}};
  }

  void start_hub(const json& repos, const json& drop_once = json::object()) {
    hub_ = std::make_unique<FakeHub>(dir_, repos, drop_once);
    setenv("HF_ENDPOINT", hub_->endpoint().c_str(), 1);
  }

  fs::path repo_root(const std::string& repo = "org/tiny") const { return cache_ / repo_folder_name(repo); }

  fs::path dir_, cache_;
  std::map<std::string, std::string> files_;
  std::unique_ptr<FakeHub> hub_;
  std::vector<std::pair<std::string, std::string>> saved_;
};

std::string git_blob_sha1_of(const std::string& data) {
  // Computed by the same Python the fake Hub runs, so the test does not need a SHA-1 of its own.
  char tmpl[] = "/tmp/vllm_test_hub_blob_XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return "";
  close(fd);
  write_file(tmpl, data);
  std::string cmd = std::string("/usr/bin/python3 -c \"import hashlib,sys; d=open(sys.argv[1],'rb').read(); "
                                "print(hashlib.sha1(b'blob %d\\0' % len(d) + d).hexdigest())\" ") + tmpl;
  FILE* p = popen(cmd.c_str(), "r");
  char line[128] = {0};
  if (p) {
    if (!std::fgets(line, sizeof(line), p)) line[0] = 0;
    pclose(p);
  }
  std::remove(tmpl);
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

template <typename F>
std::string error_of(F&& f, ErrorKind* kind = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (kind) *kind = e.kind();
    return e.what();
  }
  return "(no error)";
}

// ---- pure parts ----

TEST(HubCachePath, PrecedenceDownloadDirThenHfHubCacheThenHfHomeThenHome) {
  std::vector<std::pair<std::string, std::string>> saved;
  for (const char* v : kHubVars)
    if (const char* value = std::getenv(v)) saved.emplace_back(v, value);
  for (const char* v : kHubVars) unsetenv(v);

  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(hub_cache_dir(), fs::path("/home/u/.cache/huggingface/hub"));
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(hub_cache_dir(), fs::path("/xdg/huggingface/hub"));
  setenv("HF_HOME", "/hf", 1);
  EXPECT_EQ(hub_cache_dir(), fs::path("/hf/hub"));
  setenv("HF_HOME", "~/hfhome", 1);
  EXPECT_EQ(hub_cache_dir(), fs::path("/home/u/hfhome/hub"));
  setenv("HUGGINGFACE_HUB_CACHE", "/legacy", 1);
  EXPECT_EQ(hub_cache_dir(), fs::path("/legacy"));
  setenv("HF_HUB_CACHE", "/hubcache", 1);
  EXPECT_EQ(hub_cache_dir(), fs::path("/hubcache"));
  EXPECT_EQ(hub_cache_dir("/models"), fs::path("/models"));
  EXPECT_EQ(hub_cache_dir("~/m"), fs::path("/home/u/m"));

  for (const char* v : kHubVars) unsetenv(v);
  for (const auto& [k, v] : saved) setenv(k.c_str(), v.c_str(), 1);
}

TEST(HubCachePath, RepoFolderNames) {
  EXPECT_EQ(repo_folder_name("Qwen/Qwen2.5-0.5B-Instruct"), "models--Qwen--Qwen2.5-0.5B-Instruct");
  EXPECT_EQ(repo_folder_name("gpt2"), "models--gpt2");
  EXPECT_TRUE(is_commit_hash(kCommit));
  EXPECT_FALSE(is_commit_hash("main"));
  EXPECT_FALSE(is_commit_hash("0123456789ABCDEF0123456789ABCDEF01234567"));
}

TEST(HubRepoId, ValidatesLikeHuggingfaceHub) {
  for (const char* ok : {"gpt2", "org/name", "Qwen/Qwen2.5-0.5B-Instruct", "a_b/c.d-e"}) EXPECT_TRUE(is_valid_repo_id(ok)) << ok;
  for (const char* bad : {"", "/abs/path", "./model", "../model", "a/b/c", "org/na--me", "org/..", "org/name.git",
                          "-org/name", "org/name-", "org name", "~/model"})
    EXPECT_FALSE(is_valid_repo_id(bad)) << bad;
}

TEST(HubSha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(HubFiles, PicksWhatTheEngineReads) {
  std::vector<std::string> repo = {"config.json", "README.md", "model.safetensors", "tokenizer.json", "merges.txt",
                                   "original/model.safetensors", "pytorch_model.bin", "chat_template.jinja"};
  EXPECT_EQ(model_files_to_download(repo), (std::vector<std::string>{"config.json", "model.safetensors", "tokenizer.json",
                                                                     "merges.txt", "chat_template.jinja"}));
  // With an index, shards come from the index, not from the listing.
  std::vector<std::string> sharded = {"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                      "consolidated.safetensors"};
  EXPECT_EQ(model_files_to_download(sharded), (std::vector<std::string>{"config.json", "model.safetensors.index.json"}));
}

// ---- against the fake Hub ----

TEST_F(HubTest, FirstResolveDownloadsAndLaysOutTheCacheAsHuggingfaceHub) {
  start_hub({{"org/tiny", tiny_repo()}});
  std::string folder = resolve_hub_model("org/tiny", "", "");
  fs::path root = repo_root();
  EXPECT_EQ(fs::path(folder), root / "snapshots" / kCommit);
  EXPECT_EQ(read_file(root / "refs" / "main"), kCommit);  // the bare hash, no newline

  const std::string sha_weights = sha256_hex(files_["model.safetensors"]);
  std::map<std::string, std::string> blob_of = {{"config.json", git_blob_sha1_of(files_["config.json"])},
                                                {"tokenizer.json", git_blob_sha1_of(files_["tokenizer.json"])},
                                                {"model.safetensors", sha_weights}};
  std::set<std::string> expected_blobs, blobs, snapshot_files;
  for (const auto& [file, blob] : blob_of) {
    ASSERT_EQ(blob.size(), file == "model.safetensors" ? 64u : 40u) << file;
    expected_blobs.insert(blob);
    fs::path link = fs::path(folder) / file;
    ASSERT_TRUE(fs::is_symlink(link)) << file;
    EXPECT_EQ(fs::read_symlink(link), fs::path("../../blobs") / blob) << file;
    EXPECT_TRUE(read_file(link) == files_[file]) << file;
  }
  for (const auto& e : fs::directory_iterator(root / "blobs")) blobs.insert(e.path().filename().string());
  EXPECT_EQ(blobs, expected_blobs);  // no .incomplete left, README.md not fetched
  for (const auto& e : fs::directory_iterator(folder)) snapshot_files.insert(e.path().filename().string());
  EXPECT_EQ(snapshot_files, (std::set<std::string>{"config.json", "tokenizer.json", "model.safetensors"}));
  EXPECT_TRUE(snapshot_is_complete(folder));
}

TEST_F(HubTest, SecondResolveNeedsNoServerOnlineOrOffline) {
  start_hub({{"org/tiny", tiny_repo()}});
  std::string folder = resolve_hub_model("org/tiny", "main", "");
  hub_->stop();
  // A complete snapshot is used without asking the Hub...
  EXPECT_EQ(resolve_hub_model("org/tiny", "main", ""), folder);
  // ...and HF_HUB_OFFLINE never asks it, by branch or by commit.
  setenv("HF_HUB_OFFLINE", "1", 1);
  EXPECT_EQ(resolve_hub_model("org/tiny", "", ""), folder);
  EXPECT_EQ(resolve_hub_model("org/tiny", kCommit, ""), folder);
}

TEST_F(HubTest, OfflineDoesNotTouchTheNetwork) {
  start_hub({{"org/tiny", tiny_repo()}});
  setenv("HF_HUB_OFFLINE", "true", 1);
  ErrorKind kind{};
  std::string msg = error_of([] { resolve_hub_model("org/tiny", "", ""); }, &kind);
  EXPECT_NE(msg.find("HF_HUB_OFFLINE"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'org/tiny'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(cache_.string()), std::string::npos) << msg;
  EXPECT_EQ(kind, ErrorKind::kNotFound);
  EXPECT_TRUE(hub_->requests().empty());
}

TEST_F(HubTest, InterruptedDownloadResumesWithRangeAndIsByteIdentical) {
  start_hub({{"org/tiny", tiny_repo()}}, {{"org/tiny/model.safetensors", 2500}});
  std::string folder = resolve_hub_model("org/tiny", "", "");
  EXPECT_TRUE(read_file(fs::path(folder) / "model.safetensors") == files_["model.safetensors"]);
  std::vector<std::string> weight_gets;
  for (const auto& r : hub_->requests())
    if (r["method"] == "GET" && r["path"].get<std::string>().rfind("/cdn/", 0) == 0)
      weight_gets.push_back(r["range"].is_null() ? "none" : r["range"].get<std::string>());
  EXPECT_EQ(weight_gets, (std::vector<std::string>{"none", "bytes=2500-"}));
}

TEST_F(HubTest, LeftoverIncompleteFileIsResumed) {
  start_hub({{"org/tiny", tiny_repo()}});
  const std::string& weights = files_["model.safetensors"];
  write_file(repo_root() / "blobs" / (sha256_hex(weights) + ".incomplete"), weights.substr(0, 1000));
  std::string folder = resolve_hub_model("org/tiny", "", "");
  EXPECT_TRUE(read_file(fs::path(folder) / "model.safetensors") == weights);
  bool resumed = false;
  for (const auto& r : hub_->requests()) resumed |= r["range"] == "bytes=1000-";
  EXPECT_TRUE(resumed);
}

TEST_F(HubTest, FileWithoutEtagIsNamedBySha256) {
  json repo = tiny_repo();
  repo["files"]["tokenizer.json"]["etag"] = false;
  start_hub({{"org/tiny", repo}});
  std::string folder = resolve_hub_model("org/tiny", "", "");
  EXPECT_EQ(fs::read_symlink(fs::path(folder) / "tokenizer.json"),
            fs::path("../../blobs") / sha256_hex(files_["tokenizer.json"]));
}

TEST_F(HubTest, ShardedModelFetchesTheShardsItsIndexNames) {
  json f = json::object();
  std::map<std::string, std::string> data = {
      {"config.json", "{}"},
      {"model.safetensors.index.json",
       R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})"},
      {"model-00001-of-00002.safetensors", random_bytes(3000, 2)},
      {"model-00002-of-00002.safetensors", random_bytes(3000, 3)},
      {"consolidated.safetensors", random_bytes(3000, 4)},
      {"original/model.safetensors", random_bytes(100, 5)}};
  for (const auto& [name, d] : data) {
    fs::path p = dir_ / "sharded" / name;
    write_file(p, d);
    f[name] = {{"path", p.string()}, {"lfs", name.find(".safetensors") != std::string::npos && name.find("index") == std::string::npos}};
  }
  start_hub({{"org/sharded", {{"commit", kCommit}, {"refs", {{"main", kCommit}}}, {"files", f}}}});
  fs::path folder = resolve_hub_model("org/sharded", "", "");
  std::set<std::string> got;
  for (const auto& e : fs::directory_iterator(folder)) got.insert(e.path().filename().string());
  EXPECT_EQ(got, (std::set<std::string>{"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                        "model-00002-of-00002.safetensors"}));
  EXPECT_TRUE(read_file(folder / "model-00002-of-00002.safetensors") == data["model-00002-of-00002.safetensors"]);
  EXPECT_TRUE(snapshot_is_complete(folder));
}

// A hostile or broken repository: its index names a shard outside the snapshot folder. Nothing
// may be fetched to (or linked at) that path.
TEST_F(HubTest, IndexNamingAShardOutsideTheFolderIsRefused) {
  json f = json::object();
  std::map<std::string, std::string> data = {
      {"config.json", "{}"},
      {"model.safetensors.index.json", R"({"weight_map": {"a": "../../../../escaped.safetensors"}})"},
      {"model.safetensors", random_bytes(100, 2)}};
  for (const auto& [name, d] : data) {
    fs::path p = dir_ / "hostile" / name;
    write_file(p, d);
    f[name] = {{"path", p.string()}, {"lfs", false}};
  }
  start_hub({{"org/hostile", {{"commit", kCommit}, {"refs", {{"main", kCommit}}}, {"files", f}}}});
  try {
    resolve_hub_model("org/hostile", "", "");
    FAIL() << "resolved";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shard '../../../../escaped.safetensors' (for tensor 'a') is not a file name "
                                         "inside the model folder"),
              std::string::npos)
        << e.what();
  }
  for (auto& e : fs::recursive_directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find("escaped"), std::string::npos) << e.path();
}

TEST_F(HubTest, RevisionBranchAndDownloadDir) {
  json repo = tiny_repo();
  repo["refs"]["v2"] = kOtherCommit;
  start_hub({{"org/tiny", repo}});
  fs::path elsewhere = dir_ / "download_dir";
  fs::path folder = resolve_hub_model("org/tiny", "v2", elsewhere.string());
  EXPECT_EQ(folder, elsewhere / "models--org--tiny" / "snapshots" / kOtherCommit);
  EXPECT_EQ(read_file(elsewhere / "models--org--tiny" / "refs" / "v2"), kOtherCommit);
  EXPECT_FALSE(fs::exists(cache_ / "models--org--tiny"));
}

TEST_F(HubTest, RenamedRepoIsFollowedAndCachedUnderTheNameAsked) {
  start_hub({{"org/tiny", tiny_repo()}, {"org/old-tiny", {{"moved_to", "org/tiny"}}}});
  fs::path folder = resolve_hub_model("org/old-tiny", "", "");
  EXPECT_EQ(folder, repo_root("org/old-tiny") / "snapshots" / kCommit);
  EXPECT_EQ(fs::read_symlink(folder / "model.safetensors"),
            fs::path("../../blobs") / sha256_hex(files_["model.safetensors"]));
  EXPECT_TRUE(read_file(folder / "model.safetensors") == files_["model.safetensors"]);
}

TEST_F(HubTest, NotFoundErrorsNameTheRepoOrRevision) {
  start_hub({{"org/tiny", tiny_repo()}});
  ErrorKind kind{};
  std::string msg = error_of([] { resolve_hub_model("org/missing", "", ""); }, &kind);
  EXPECT_NE(msg.find("404"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'org/missing'"), std::string::npos) << msg;
  EXPECT_EQ(kind, ErrorKind::kNotFound);
  msg = error_of([] { resolve_hub_model("org/tiny", "no-such-branch", ""); });
  EXPECT_NE(msg.find("404"), std::string::npos) << msg;
  EXPECT_NE(msg.find("revision 'no-such-branch' was not found"), std::string::npos) << msg;
}

TEST_F(HubTest, PrivateRepoNeedsHfToken) {
  json repo = tiny_repo();
  repo["token"] = "hf_secret";
  start_hub({{"org/private", repo}});
  ErrorKind kind{};
  std::string msg = error_of([] { resolve_hub_model("org/private", "", ""); }, &kind);
  EXPECT_NE(msg.find("401"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HF_TOKEN"), std::string::npos) << msg;
  EXPECT_EQ(kind, ErrorKind::kNotFound);

  setenv("HF_TOKEN", "hf_secret", 1);
  fs::path folder = resolve_hub_model("org/private", "", "");
  EXPECT_EQ(read_file(folder / "config.json"), files_["config.json"]);
  bool authorized_api_call = false;
  for (const auto& r : hub_->requests())
    authorized_api_call |= r["path"].get<std::string>().rfind("/api/", 0) == 0 && r["auth"] == "Bearer hf_secret";
  EXPECT_TRUE(authorized_api_call);
}

TEST_F(HubTest, TokenFileFromHuggingfaceCliLogin) {
  json repo = tiny_repo();
  repo["token"] = "hf_from_file";
  start_hub({{"org/private", repo}});
  setenv("HF_HOME", (dir_ / "hf_home").c_str(), 1);
  write_file(dir_ / "hf_home" / "token", "hf_from_file\n");
  EXPECT_NO_THROW(resolve_hub_model("org/private", "", ""));
}

TEST_F(HubTest, UnreachableHubSaysSoAndSuggestsOffline) {
  setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);  // nothing listens on port 1
  std::string msg = error_of([] { resolve_hub_model("org/tiny", "", ""); });
  EXPECT_NE(msg.find("cannot reach"), std::string::npos) << msg;
  EXPECT_NE(msg.find("HF_HUB_OFFLINE"), std::string::npos) << msg;
}

}  // namespace
}  // namespace vllm::hub

// The HTTP request reader of `vllm serve`: raw bytes as a client sends them, read by the same
// Beast parser set-up and limits as a connection (server::read_http_requests). The first byte
// picks how the bytes arrive (all at once, or in pieces of 1-255 bytes), since the parser is
// fed piece by piece off the socket; the reading must not depend on it. Each request read is
// then taken as the endpoints take it (headers, JSON body).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "fuzz_util.h"
#include "vllm/server/api_server.h"
#include "vllm/server/errors.h"
#include "vllm/server/http_server.h"
#include "vllm/server/protocol.h"

using namespace vllm::server;

namespace {

void check_requests(const HttpReadResult& r, const HttpServerOptions& options) {
  FUZZ_CHECK(r.error_status == 0 || r.error_status == 400 || r.error_status == 413 || r.error_status == 431);
  for (const HttpRequest& req : r.requests) {
    FUZZ_CHECK(req.version == 10 || req.version == 11);
    FUZZ_CHECK(req.body.size() <= options.max_body_bytes);
    (void)req.header("content-type");
    (void)req.header("authorization");
    // As the handlers take a body: parse_body's ApiError, and (a number JSON cannot hold, like
    // 1e999) nlohmann's out_of_range, which the handlers' catch of json::exception answers with 400.
    try {
      (void)parse_body(req);
    } catch (const ApiError&) {
    } catch (const nlohmann::json::exception&) {
    }
  }
}

// The requests read must not depend on how the bytes arrived. The outcome after the last one
// must agree too, except when the bytes end inside a request: Beast may reject a header line it
// has seen before knowing the header is cut short (400) or wait for the rest (the client
// closed), depending on the pieces; either way the connection is closed with no request served.
bool same(const HttpReadResult& a, const HttpReadResult& b) {
  if (a.requests.size() != b.requests.size()) return false;
  if (!a.incomplete && !b.incomplete && a.error_status != b.error_status) return false;
  for (size_t i = 0; i < a.requests.size(); ++i) {
    const HttpRequest &x = a.requests[i], &y = b.requests[i];
    if (x.method != y.method || x.path != y.path || x.query != y.query || x.headers != y.headers ||
        x.body != y.body || x.version != y.version)
      return false;
  }
  return true;
}

// For the report when the two readings differ.
void print(const char* what, const HttpReadResult& r) {
  std::fprintf(stderr, "%s: %zu requests, error %d '%s', incomplete %d\n", what, r.requests.size(), r.error_status,
               r.error_message.c_str(), r.incomplete);
  for (const HttpRequest& q : r.requests)
    std::fprintf(stderr, "  %s %s ? %s HTTP/%d, %zu headers, body %zu bytes\n", q.method.c_str(), q.path.c_str(),
                 q.query.c_str(), q.version, q.headers.size(), q.body.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t chunk = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  HttpServerOptions options;
  options.max_body_bytes = ServerConfig{}.max_body_bytes;  // what `vllm serve` reads with
  const HttpReadResult whole = read_http_requests(bytes, options, 0);
  check_requests(whole, options);
  if (chunk != 0) {
    const HttpReadResult pieces = read_http_requests(bytes, options, chunk);
    check_requests(pieces, options);
    if (!same(whole, pieces)) {
      print("read at once", whole);
      print("read in pieces", pieces);
    }
    FUZZ_CHECK(same(whole, pieces));
  }
  // A small body limit, so that inputs reach the 413 answer too.
  options.max_body_bytes = 64;
  check_requests(read_http_requests(bytes, options, chunk), options);
  return 0;
}

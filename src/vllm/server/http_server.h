// The HTTP/1.1 layer of `vllm serve`: an event-driven server on Boost.Beast/Asio, over plain
// TCP or TLS (OpenSSL; one session implementation for both stream types). A few I/O threads
// run every connection; each connection works on its own strand, so one request's engine
// outputs and its writes never run concurrently. Requests are read whole (with a body limit),
// handed to one Handler, and answered through an Exchange: a plain response, or a streamed
// (chunked) body written piece by piece. A client that goes away before its response is
// complete is noticed at once (a read on the connection ends) and reported through
// Exchange::on_disconnect, so the request behind it can be aborted.
//
// Hostile clients: reading a request has a time limit (idle_timeout_s); a response that makes
// no progress for write_timeout_s (a client that stopped reading) closes the connection; a
// streamed response tells its producer when more than a limit of bytes wait unsent
// (Exchange::on_backpressure), so that it can stop producing until the client reads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vllm::server {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ... as sent
  std::string path;    // the target without its query string
  std::string query;   // after '?', or ""
  Headers headers;     // names in lower case
  std::string body;
  int version = 11;    // 10 or 11

  // The first header with this (case-insensitive) name.
  std::optional<std::string> header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;
  std::string body;
};

class Session;
template <class Stream>
class BasicSession;

// One request's way back to its client. Every method may be called from any thread: the work
// is posted to the connection's strand and runs there in call order. A response is either
// respond() once, or start_stream(), any number of write(), then end_stream(). Calls after the
// client went away are dropped.
class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  explicit Exchange(std::shared_ptr<Session> session);
  ~Exchange();

  void respond(HttpResponse response);
  void start_stream(int status, std::string content_type, Headers headers = {});
  void write(std::string data);
  void end_stream();
  // Runs fn on the connection's strand (dropped if the connection is gone for good).
  void post(std::function<void()> fn);
  // fn runs once, on the strand, if the client disconnects before the response is complete
  // (immediately, when that already happened). Call on the strand.
  void on_disconnect(std::function<void()> fn);
  // Headers added to whatever response this exchange sends (CORS, X-Request-Id).
  void add_header(std::string name, std::string value);
  // Flow control for a streamed response. Call on the strand. fn(true) runs (on the strand)
  // when more than high_water bytes of this response wait to be sent, fn(false) once they are
  // down to high_water / 2 again. Bytes still count while the connection's write is blocked
  // by a client that does not read.
  void on_backpressure(size_t high_water, std::function<void(bool full)> fn);

  // Strand only.
  bool disconnected() const { return disconnected_; }
  bool started() const { return started_; }  // respond() or start_stream() happened

 private:
  friend class Session;
  template <class Stream>
  friend class BasicSession;
  void notify_disconnect();  // strand

  std::shared_ptr<Session> session_;
  Headers extra_headers_;
  std::function<void()> on_disconnect_;
  bool disconnected_ = false;
  bool started_ = false;
  bool complete_ = false;
};

using Handler = std::function<void(HttpRequest&&, std::shared_ptr<Exchange>)>;

// TLS as uvicorn takes it (vLLM's --ssl-* flags): PEM files.
struct TlsOptions {
  std::string certfile;  // the certificate chain
  std::string keyfile;   // its private key
  std::string ca_certs;  // CA certificates to verify clients with ("" : none)
  int cert_reqs = 0;     // Python's ssl.CERT_NONE (0), CERT_OPTIONAL (1), CERT_REQUIRED (2)
};

struct HttpServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8000;  // 0: any free port (see HttpServer::port())
  int io_threads = 2;
  size_t max_body_bytes = 32u << 20;
  bool access_log = true;  // uvicorn-style '<client> - "POST /path HTTP/1.1" 200 OK' lines
  double idle_timeout_s = 60;  // how long a connection may take to send a request (or a TLS handshake)
  // How long a response may wait for the client to take any of its bytes before the
  // connection is closed (its request aborted).
  double write_timeout_s = 60;
  std::optional<TlsOptions> tls;  // set: HTTPS only
  // Builds the body of the errors the HTTP layer answers itself (400, 413, 431, 500).
  std::function<HttpResponse(int status, const std::string& message)> error_body;
};

// How a connection reads requests, without the socket: `bytes` as a client sent them, arriving
// `chunk` bytes at a time (0: all at once), read with the server's parser set-up and limits,
// pipelined requests one after another until one is not keep-alive. Public for the fuzz target
// (fuzz/http_request.cpp), so that it runs exactly what a connection runs.
struct HttpReadResult {
  std::vector<HttpRequest> requests;
  int error_status = 0;       // what the server answers an unreadable request with (400, 413, 431)
  std::string error_message;  // ... and the message it gives
  bool incomplete = false;    // the bytes ended inside a request (the server just closes)
};
HttpReadResult read_http_requests(std::string_view bytes, const HttpServerOptions& options, size_t chunk = 0);

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Loads the TLS files, binds and listens (throws vllm::Error when a file does not load or
  // the address is taken or invalid), then starts the I/O threads accepting connections.
  void start();
  uint16_t port() const;
  // Stops accepting new connections; open ones go on.
  void stop_accepting();
  // Responses begun and not yet fully written.
  int active_exchanges() const;
  // Closes every connection and joins the I/O threads.
  void stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace vllm::server

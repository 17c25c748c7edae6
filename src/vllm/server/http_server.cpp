#include "vllm/server/http_server.h"

#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <deque>
#include <list>
#include <mutex>
#include <span>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

#include "vllm/core/error.h"
#include "vllm/core/logging.h"

namespace vllm::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string reason_phrase(int status) {
  auto r = http::obsolete_reason(static_cast<http::status>(status));
  return r.empty() ? std::string("Unknown") : std::string(r);
}

std::string hex(size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), digits[n & 15]);
    n >>= 4;
  } while (n);
  return s;
}

using RequestParser = http::request_parser<http::string_body>;

// The parser set-up of every request a connection reads (and of read_http_requests).
void configure_parser(RequestParser& parser, const HttpServerOptions& options) {
  parser.body_limit(options.max_body_bytes);
  parser.header_limit(64 * 1024);
}

HttpRequest to_http_request(http::request<http::string_body>&& msg) {
  HttpRequest req;
  req.method = std::string(msg.method_string());
  std::string target(msg.target());
  auto q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  for (const auto& field : msg) req.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
  req.version = static_cast<int>(msg.version());
  req.body = std::move(msg.body());
  return req;
}

// The answer to a request that could not be read: {status, message}, or {0, ""} when there is
// none to give (the connection closed or timed out).
std::pair<int, std::string> read_error_answer(error_code ec, const HttpServerOptions& options) {
  if (ec == http::error::body_limit)
    return {413, "Request body is larger than the limit of " + std::to_string(options.max_body_bytes) + " bytes"};
  if (ec == http::error::header_limit) return {431, "Request headers are too large"};
  // A parse error (not a closed or timed-out connection) gets a 400 before closing.
  if (ec.category() == http::make_error_code(http::error::bad_target).category() && ec != http::error::end_of_stream &&
      ec != http::error::partial_message)
    return {400, "Invalid HTTP request: " + ec.message()};
  return {0, ""};
}

HttpResponse plain_error(int status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = message;
  return r;
}

}  // namespace

std::optional<std::string> HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::optional<ssl::context> tls;  // set for HTTPS
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::atomic<int> active{0};
  std::atomic<bool> accepting{false};
  uint16_t bound_port = 0;
  std::mutex sessions_mutex;
  std::list<std::weak_ptr<Session>> sessions;

  void do_accept();
};

// What an Exchange needs from its connection. Everything but executor() and close() runs on
// the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  virtual ~Session() = default;
  virtual net::any_io_executor executor() = 0;
  virtual void close() = 0;  // any thread
  virtual void send_response(Exchange& ex, HttpResponse r) = 0;
  virtual void start_stream(Exchange& ex, int status, const std::string& content_type, const Headers& headers) = 0;
  virtual void write(Exchange& ex, std::string data) = 0;
  virtual void end_stream(Exchange& ex) = 0;
  virtual void watch(Exchange& ex) = 0;
  virtual void set_backpressure(Exchange& ex, size_t high_water, std::function<void(bool)> fn) = 0;
};

namespace {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Whether a failed TLS handshake read a plain HTTP request (OpenSSL recognizes "GET ", "POST"...).
bool is_plain_http_on_tls(const error_code& ec) {
  return ec.category() == net::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST;
}

// The one value a Transfer-Encoding header may have here: HTTP/1.1 servers must answer 501
// to a coding they do not implement (RFC 9112 6.1), and h11 (uvicorn's parser) implements
// only chunked.
bool only_chunked(std::string_view te) {
  while (!te.empty() && (te.front() == ' ' || te.front() == '\t')) te.remove_prefix(1);
  while (!te.empty() && (te.back() == ' ' || te.back() == '\t')) te.remove_suffix(1);
  return iequals(te, "chunked");
}

}  // namespace

// One connection over Stream (beast::tcp_stream, or TlsStream for HTTPS). Everything here runs
// on the connection's strand (the socket's executor).
template <class Stream>
class BasicSession final : public Session {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  BasicSession(tcp::socket&& socket, HttpServer::Impl& server)
    requires(!kTls)
      : stream_(std::move(socket)),
        server_(server),
        write_timer_(stream_.get_executor()),
        idle_timer_(stream_.get_executor()) {}
  BasicSession(tcp::socket&& socket, HttpServer::Impl& server, ssl::context& tls)
    requires(kTls)
      : stream_(std::move(socket), tls),
        server_(server),
        write_timer_(stream_.get_executor()),
        idle_timer_(stream_.get_executor()) {}

  net::any_io_executor executor() override { return stream_.get_executor(); }

  void run() {
    net::dispatch(stream_.get_executor(), [self = self_ptr()] {
      if constexpr (kTls) {
        self->lowest().expires_after(self->idle_timeout());
        self->stream_.async_handshake(ssl::stream_base::server,
                                      [self](error_code ec) { self->on_handshake(ec); });
      } else {
        self->do_read();
      }
    });
  }

  void close() override {
    net::post(stream_.get_executor(), [self = self_ptr()] { self->client_gone(); });
  }

  // --- called from Exchange, on the strand ---
  void send_response(Exchange& ex, HttpResponse r) override {
    if (!accepts(ex) || ex.started_) return;
    ex.started_ = true;
    log_access(r.status);
    const bool keep = keep_alive_ && !close_after_;
    std::string head = "HTTP/1." + std::to_string(version_ == 10 ? 0 : 1) + " " + std::to_string(r.status) + " " +
                       reason_phrase(r.status) + "\r\n";
    if (!r.content_type.empty()) head += "content-type: " + r.content_type + "\r\n";
    head += "content-length: " + std::to_string(r.body.size()) + "\r\n";
    for (const auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
    for (const auto& [k, v] : ex.extra_headers_) head += k + ": " + v + "\r\n";
    if (!keep) head += "connection: close\r\n";
    else if (version_ == 10) head += "connection: keep-alive\r\n";
    head += "\r\n";
    enqueue(std::move(head));
    if (method_ != "HEAD") enqueue(std::move(r.body));
    response_done_ = true;
    flush();
  }

  void start_stream(Exchange& ex, int status, const std::string& content_type, const Headers& headers) override {
    if (!accepts(ex) || ex.started_) return;
    ex.started_ = true;
    log_access(status);
    chunked_ = version_ != 10;
    if (!chunked_) close_after_ = true;  // HTTP/1.0: the body ends when the connection does
    std::string head = "HTTP/1." + std::to_string(version_ == 10 ? 0 : 1) + " " + std::to_string(status) + " " +
                       reason_phrase(status) + "\r\n";
    head += "content-type: " + content_type + "\r\n";
    if (chunked_) head += "transfer-encoding: chunked\r\n";
    for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
    for (const auto& [k, v] : ex.extra_headers_) head += k + ": " + v + "\r\n";
    if (!keep_alive_ || close_after_) head += "connection: close\r\n";
    head += "\r\n";
    enqueue(std::move(head));
    flush();
  }

  void write(Exchange& ex, std::string data) override {
    if (!accepts(ex) || !ex.started_ || response_done_ || data.empty()) return;
    if (chunked_) {
      enqueue(hex(data.size()) + "\r\n");
      data += "\r\n";
    }
    enqueue(std::move(data));
    flush();
    check_backpressure();
  }

  void end_stream(Exchange& ex) override {
    if (!accepts(ex) || !ex.started_ || response_done_) return;
    if (chunked_) enqueue("0\r\n\r\n");
    response_done_ = true;
    flush();
  }

  void watch(Exchange& ex) override {
    // Gone before anyone listened: client_gone() marked the exchange disconnected, so
    // on_disconnect() runs the callback at once; an exchange the session dropped is gone too.
    if (closed_ && current_.get() != &ex && !ex.complete_) ex.notify_disconnect();
  }

  void set_backpressure(Exchange& ex, size_t high_water, std::function<void(bool)> fn) override {
    if (!accepts(ex)) return;
    bp_high_ = high_water;
    bp_fn_ = std::move(fn);
    bp_full_ = false;
    check_backpressure();
  }

 private:
  std::shared_ptr<BasicSession> self_ptr() { return std::static_pointer_cast<BasicSession>(shared_from_this()); }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  std::chrono::milliseconds idle_timeout() const {
    return std::chrono::milliseconds(static_cast<int64_t>(server_.options.idle_timeout_s * 1000));
  }

  void log_access(int status) {
    if (!server_.options.access_log) return;
    VLLM_LOG_INFO("{} - \"{} {} HTTP/1.{}\" {} {}", remote(), method_.empty() ? "-" : method_, target_.empty() ? "-" : target_,
                  version_ == 10 ? 0 : 1, status, reason_phrase(status));
  }

  const std::string& remote() {
    if (remote_.empty()) {
      error_code ec;
      auto ep = lowest().socket().remote_endpoint(ec);
      remote_ = ec ? std::string("-") : ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    return remote_;
  }

  bool accepts(const Exchange& ex) const {
    return !closed_ && current_.get() == &ex && !ex.complete_ && !ex.disconnected_;
  }

  // --- TLS handshake ---
  void on_handshake(error_code ec) {
    if (!ec) return do_read();
    if (closed_) return;
    if (is_plain_http_on_tls(ec)) {
      // A plain HTTP request to the HTTPS port: answer it in plain HTTP (as nginx does), so the
      // client sees why, then close.
      VLLM_LOG_DEBUG("{}: plain HTTP request on the TLS port", remote());
      static const std::string kBody =
          R"({"error":{"message":"The plain HTTP request was sent to an HTTPS port","type":"BadRequestError","param":null,"code":400}})";
      auto text = std::make_shared<std::string>("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: " +
                                                std::to_string(kBody.size()) + "\r\nconnection: close\r\n\r\n" + kBody);
      lowest().expires_after(std::chrono::seconds(5));
      net::async_write(lowest(), net::buffer(*text), [self = self_ptr(), text](error_code wec, size_t) {
        if (wec) return self->client_gone();
        self->closed_ = true;
        self->drain_raw();
      });
      return;
    }
    VLLM_LOG_DEBUG("{}: TLS handshake failed: {}", remote(), ec.message());
    client_gone();
  }

  // --- reading requests ---
  void do_read() {
    if (closed_) return;
    parser_.emplace();
    configure_parser(*parser_, server_.options);
    lowest().expires_after(idle_timeout());
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = self_ptr()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (ec) return on_read_error(ec);
    auto& msg = parser_->get();
    // Request smuggling and ambiguity: only `Transfer-Encoding: chunked` is understood, and an
    // HTTP/1.1 request names exactly one Host (RFC 9112 3.2), as h11 under uvicorn demands.
    size_t te_count = 0;
    std::string te;
    for (auto it = msg.find(http::field::transfer_encoding); it != msg.end() && it->name() == http::field::transfer_encoding; ++it)
      ++te_count, te = std::string(it->value());
    if (te_count > 1 || (te_count == 1 && !only_chunked(te)))
      return reject(501, "Transfer-Encoding '" + te.substr(0, 100) + "' is not implemented; only 'chunked' is supported");
    // Both framings at once is how requests are smuggled past proxies that pick the other one.
    if (te_count > 0 && msg.count(http::field::content_length) > 0)
      return reject(400, "Invalid HTTP request: both Content-Length and Transfer-Encoding");
    const size_t hosts = msg.count(http::field::host);
    if (hosts > 1) return reject(400, "Invalid HTTP request: more than one Host header");
    if (hosts == 0 && msg.version() >= 11) return reject(400, "Invalid HTTP request: missing Host header");
    auto expect = msg.find(http::field::expect);
    if (expect != msg.end() && iequals(expect->value(), "100-continue") && !parser_->is_done()) {
      // curl asks before sending bodies over 1 KiB.
      auto interim = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      net::async_write(stream_, net::buffer(*interim), [self = self_ptr(), interim](error_code wec, size_t) {
        if (wec) return self->client_gone();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    lowest().expires_after(idle_timeout());
    http::async_read(stream_, buffer_, *parser_, [self = self_ptr()](error_code ec, size_t) {
      if (ec) return self->on_read_error(ec);
      self->on_request();
    });
  }

  void on_read_error(error_code ec) {
    if (ec == http::error::bad_transfer_encoding) {
      // Beast refuses a coding other than chunked, and chunked with Content-Length, at the
      // header; it has inserted the fields before the failing one, and the raw header is still
      // in the buffer.
      if (parser_ && parser_->get().count(http::field::content_length) > 0)
        return reject(400, "Invalid HTTP request: both Content-Length and Transfer-Encoding");
      return reject(501, "Transfer-Encoding '" + raw_header_value("transfer-encoding") +
                             "' is not implemented; only 'chunked' is supported");
    }
    auto [status, message] = read_error_answer(ec, server_.options);
    if (status != 0) return reject(status, message);
    client_gone();
  }

  // The value of a header line in the unparsed request head in buffer_ (cut short), or "".
  std::string raw_header_value(std::string_view name) const {
    const auto data = buffer_.data();
    std::string_view head(static_cast<const char*>(data.data()), std::min<size_t>(data.size(), 64 * 1024));
    head = head.substr(0, head.find("\r\n\r\n"));
    for (size_t pos = head.find('\n'); pos != std::string_view::npos; pos = head.find('\n', pos + 1)) {
      std::string_view line = head.substr(pos + 1, head.find('\n', pos + 1) - pos - 1);
      if (line.size() <= name.size() || line[name.size()] != ':' || !iequals(line.substr(0, name.size()), name)) continue;
      std::string_view value = line.substr(name.size() + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == '\r' || value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      return std::string(value.substr(0, 100));
    }
    return "";
  }

  // Answers a request that could not be read and closes the connection.
  void reject(int status, const std::string& message) {
    close_after_ = true;
    keep_alive_ = false;
    version_ = 11;
    method_.clear();
    target_.clear();
    current_ = std::make_shared<Exchange>(shared_from_this());
    server_.active.fetch_add(1);
    counted_ = true;
    HttpResponse r = server_.options.error_body ? server_.options.error_body(status, message) : plain_error(status, message);
    send_response(*current_, std::move(r));
  }

  void on_request() {
    target_ = std::string(parser_->get().target());
    keep_alive_ = parser_->get().keep_alive();
    HttpRequest req = to_http_request(parser_->release());
    version_ = req.version;
    method_ = req.method;
    close_after_ = false;
    response_done_ = false;
    chunked_ = false;
    current_ = std::make_shared<Exchange>(shared_from_this());
    server_.active.fetch_add(1);
    counted_ = true;
    lowest().expires_never();
    arm_monitor();
    auto ex = current_;
    try {
      server_.handler(std::move(req), ex);
    } catch (const std::exception& e) {
      VLLM_LOG_ERROR("request handler failed: {}", e.what());
      if (!ex->started_) {
        HttpResponse r = server_.options.error_body ? server_.options.error_body(500, "Internal Server Error")
                                                    : plain_error(500, "Internal Server Error");
        send_response(*ex, std::move(r));
      }
    }
  }

  // Notices a client that goes away while its response is pending: a read on the connection
  // ends (EOF, reset, or TLS close_notify). Bytes that arrive instead are a pipelined request:
  // they stay in buffer_ for the next parse, and watching stops (a failed write still reports
  // a disconnect). A read rather than a peek at the socket, so that TLS works the same way.
  void arm_monitor() {
    if (closed_ || monitor_pending_ || buffer_.size() > 0) return;
    monitor_pending_ = true;
    stream_.async_read_some(buffer_.prepare(4096), [self = self_ptr()](error_code ec, size_t n) {
      self->on_monitor(ec, n);
    });
  }

  void on_monitor(error_code ec, size_t n) {
    monitor_pending_ = false;
    if (closed_) return;
    const bool cancelled = ec == net::error::operation_aborted && cancelling_monitor_;
    cancelling_monitor_ = false;
    if (!ec) buffer_.commit(n);
    if (ec && !cancelled) return client_gone();
    // The response finished while the read was pending: go on to the next request (or close).
    if (after_response_) {
      after_response_ = false;
      idle_timer_.cancel();
      proceed_after_response();
    }
  }

  // --- writing responses ---
  void enqueue(std::string data) {
    if (data.empty()) return;  // a write of nothing would complete with nothing, forever
    unsent_ += data.size();
    out_.push_back(std::move(data));
  }

  // Writes what is queued, some of it at a time: a client that reads slowly takes each piece
  // as it can, and one that takes nothing for write_timeout_s is dropped.
  void flush() {
    if (writing_ || closed_ || out_.empty()) return;
    writing_ = true;
    write_count_ = 0;
    for (size_t i = 0; i < out_.size() && write_count_ < write_bufs_.size(); ++i) {
      const std::string& s = out_[i];
      const size_t skip = i == 0 ? out_offset_ : 0;
      write_bufs_[write_count_++] = net::buffer(s.data() + skip, s.size() - skip);
    }
    const uint64_t seq = ++write_seq_;
    write_timer_.expires_after(std::chrono::milliseconds(static_cast<int64_t>(server_.options.write_timeout_s * 1000)));
    write_timer_.async_wait([self = self_ptr(), seq](error_code ec) {
      if (ec || !self->writing_ || seq != self->write_seq_ || self->closed_) return;
      VLLM_LOG_WARN("{}: the client took no response bytes for {} s; closing the connection", self->remote(),
                    self->server_.options.write_timeout_s);
      // Reset rather than close: the kernel would otherwise keep the unsent bytes for a client
      // that takes none, retrying for minutes.
      error_code ignored;
      self->lowest().socket().set_option(net::socket_base::linger(true, 0), ignored);
      self->client_gone();
    });
    // The buffer list lives in the session: the operation refers to it until it completes.
    stream_.async_write_some(std::span<const net::const_buffer>(write_bufs_.data(), write_count_),
                             [self = self_ptr()](error_code ec, size_t n) { self->on_write(ec, n); });
  }

  void on_write(error_code ec, size_t n) {
    writing_ = false;
    write_timer_.cancel();
    // Closed meanwhile (the client went away while this completion was queued): out_ is gone.
    if (ec || closed_) return client_gone();
    unsent_ -= n;
    while (n > 0 && !out_.empty()) {
      const size_t left = out_.front().size() - out_offset_;
      if (n < left) {
        out_offset_ += n;
        break;
      }
      n -= left;
      out_.pop_front();
      out_offset_ = 0;
    }
    check_backpressure();
    if (!out_.empty()) return flush();
    if (response_done_ && current_) finish_response();
  }

  void check_backpressure() {
    if (!bp_fn_ || closed_) return;
    if (!bp_full_ && unsent_ > bp_high_) {
      bp_full_ = true;
      auto fn = bp_fn_;  // it may clear or replace bp_fn_
      fn(true);
    } else if (bp_full_ && unsent_ <= bp_high_ / 2) {
      bp_full_ = false;
      auto fn = bp_fn_;
      fn(false);
    }
  }

  void finish_response() {
    current_->complete_ = true;
    current_.reset();
    bp_fn_ = nullptr;
    if (counted_) server_.active.fetch_sub(1), counted_ = false;
    if (monitor_pending_) {
      // One read at a time: on_monitor() goes on from there.
      after_response_ = true;
      if (keep_alive_ && !close_after_ && server_.accepting.load()) {
        // Keep-alive: the pending read simply becomes the first read of the next request (its
        // bytes stay in buffer_ for the parser), under the same idle limit as any wait for one.
        idle_timer_.expires_after(idle_timeout());
        idle_timer_.async_wait([self = self_ptr()](error_code ec) {
          if (!ec && self->after_response_) self->client_gone();
        });
      } else {
        // Closing anyway: stop the read.
        cancelling_monitor_ = true;
        error_code ignored;
        lowest().socket().cancel(ignored);
      }
      return;
    }
    proceed_after_response();
  }

  void proceed_after_response() {
    if (keep_alive_ && !close_after_ && server_.accepting.load()) {
      do_read();
    } else {
      linger_close();
    }
  }

  // Closes after the response: no more sending, then reads and drops what the client still
  // sends (a request body we refused) for a moment, so that closing does not reset the
  // connection before the client has read the response.
  void linger_close() {
    closed_ = true;
    if constexpr (kTls) {
      lowest().expires_after(std::chrono::seconds(5));
      stream_.async_shutdown([self = self_ptr()](error_code) {
        error_code ignored;
        self->lowest().socket().close(ignored);
      });
    } else {
      drain_raw();
    }
  }

  void drain_raw() {
    error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lowest().expires_after(std::chrono::seconds(5));
    drain();
  }

  void drain() {
    auto scratch = std::make_shared<std::array<char, 65536>>();
    lowest().async_read_some(net::buffer(*scratch), [self = self_ptr(), scratch](error_code ec, size_t) {
      if (!ec) return self->drain();
      error_code ignored;
      self->lowest().socket().close(ignored);
    });
  }

  void client_gone() {
    if (closed_) {
      // Lingering (or a plain answer on the TLS port): stop that too.
      error_code ignored;
      lowest().socket().close(ignored);
      return;
    }
    closed_ = true;
    error_code ignored;
    write_timer_.cancel();
    idle_timer_.cancel();
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
    out_.clear();
    unsent_ = 0;
    bp_fn_ = nullptr;
    if (current_) {
      auto ex = std::move(current_);  // breaks the session <-> exchange cycle
      if (counted_) server_.active.fetch_sub(1), counted_ = false;
      if (!ex->complete_) ex->notify_disconnect();
    }
  }

  Stream stream_;
  HttpServer::Impl& server_;
  net::steady_timer write_timer_;
  net::steady_timer idle_timer_;  // a kept-alive connection waiting for its next request
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Exchange> current_;
  std::deque<std::string> out_;  // response bytes not yet written
  size_t out_offset_ = 0;        // of out_.front() already written
  size_t unsent_ = 0;            // bytes in out_ not yet written
  std::array<net::const_buffer, 16> write_bufs_;  // what the pending write sends
  size_t write_count_ = 0;
  uint64_t write_seq_ = 0;
  std::function<void(bool)> bp_fn_;
  size_t bp_high_ = 0;
  bool bp_full_ = false;
  std::string method_;
  std::string target_;
  std::string remote_;
  int version_ = 11;
  bool keep_alive_ = true;
  bool close_after_ = false;
  bool response_done_ = false;
  bool chunked_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool counted_ = false;
  bool monitor_pending_ = false;
  bool cancelling_monitor_ = false;
  bool after_response_ = false;
};

// --- Exchange ---

Exchange::Exchange(std::shared_ptr<Session> session) : session_(std::move(session)) {}
Exchange::~Exchange() = default;

void Exchange::respond(HttpResponse response) {
  auto self = shared_from_this();
  net::post(session_->executor(), [self, r = std::move(response)]() mutable { self->session_->send_response(*self, std::move(r)); });
}

void Exchange::start_stream(int status, std::string content_type, Headers headers) {
  auto self = shared_from_this();
  net::post(session_->executor(), [self, status, ct = std::move(content_type), hs = std::move(headers)] {
    self->session_->start_stream(*self, status, ct, hs);
  });
}

void Exchange::write(std::string data) {
  auto self = shared_from_this();
  net::post(session_->executor(), [self, d = std::move(data)]() mutable { self->session_->write(*self, std::move(d)); });
}

void Exchange::end_stream() {
  auto self = shared_from_this();
  net::post(session_->executor(), [self] { self->session_->end_stream(*self); });
}

void Exchange::post(std::function<void()> fn) { net::post(session_->executor(), std::move(fn)); }

void Exchange::on_disconnect(std::function<void()> fn) {
  if (disconnected_) {
    fn();
    return;
  }
  on_disconnect_ = std::move(fn);
  session_->watch(*this);
}

void Exchange::add_header(std::string name, std::string value) {
  extra_headers_.emplace_back(std::move(name), std::move(value));
}

void Exchange::on_backpressure(size_t high_water, std::function<void(bool)> fn) {
  session_->set_backpressure(*this, high_water, std::move(fn));
}

void Exchange::notify_disconnect() {
  if (disconnected_ || complete_) return;
  disconnected_ = true;
  if (on_disconnect_) {
    auto fn = std::move(on_disconnect_);
    on_disconnect_ = nullptr;
    fn();
  }
}

// --- HttpServer ---

void HttpServer::Impl::do_accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](error_code ec, tcp::socket socket) {
    if (!accepting.load()) return;
    if (ec) {
      if (ec == net::error::operation_aborted) return;
      VLLM_LOG_WARN("accept failed: {}", ec.message());
      if (ec == net::error::no_descriptors) {
        // Out of file descriptors: back off briefly instead of spinning.
        auto timer = std::make_shared<net::steady_timer>(ioc, std::chrono::milliseconds(50));
        timer->async_wait([this, timer](error_code) { do_accept(); });
        return;
      }
    } else {
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto remember = [this](const std::shared_ptr<Session>& session) {
        std::lock_guard<std::mutex> lock(sessions_mutex);
        if (sessions.size() > 256) sessions.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
        sessions.push_back(session);
      };
      if (tls) {
        auto session = std::make_shared<BasicSession<TlsStream>>(std::move(socket), *this, *tls);
        remember(session);
        session->run();
      } else {
        auto session = std::make_shared<BasicSession<beast::tcp_stream>>(std::move(socket), *this);
        remember(session);
        session->run();
      }
    }
    do_accept();
  });
}

HttpServer::HttpServer(HttpServerOptions options, Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() { stop(); }

namespace {

// uvicorn's create_ssl_context for vLLM's --ssl-* flags: the certificate chain and its key, and
// optionally CA certificates to verify clients with, as ssl.CERT_NONE/OPTIONAL/REQUIRED asks.
ssl::context make_tls_context(const TlsOptions& o) {
  ssl::context ctx(ssl::context::tls_server);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  auto load = [](const char* flag, const std::string& path, auto&& fn) {
    error_code ec;
    fn(ec);
    if (ec) throw Error(std::string("cannot load ") + flag + " " + path + ": " + ec.message());
  };
  if (o.certfile.empty() || o.keyfile.empty()) throw Error("TLS needs both --ssl-certfile and --ssl-keyfile");
  load("--ssl-certfile", o.certfile, [&](error_code& ec) { ctx.use_certificate_chain_file(o.certfile, ec); });
  load("--ssl-keyfile", o.keyfile, [&](error_code& ec) { ctx.use_private_key_file(o.keyfile, ssl::context::pem, ec); });
  if (!o.ca_certs.empty())
    load("--ssl-ca-certs", o.ca_certs, [&](error_code& ec) { ctx.load_verify_file(o.ca_certs, ec); });
  switch (o.cert_reqs) {
    case 0: ctx.set_verify_mode(ssl::verify_none); break;
    case 1: ctx.set_verify_mode(ssl::verify_peer); break;
    case 2: ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert); break;
    default: throw Error("--ssl-cert-reqs must be 0 (none), 1 (optional) or 2 (required), not " + std::to_string(o.cert_reqs));
  }
  if (o.cert_reqs != 0 && o.ca_certs.empty())
    throw Error("--ssl-cert-reqs " + std::to_string(o.cert_reqs) + " verifies clients, which needs --ssl-ca-certs");
  return ctx;
}

}  // namespace

void HttpServer::start() {
  Impl& s = *impl_;
  if (s.options.tls) s.tls.emplace(make_tls_context(*s.options.tls));
  error_code ec;
  auto address = net::ip::make_address(s.options.host == "localhost" ? "127.0.0.1" : s.options.host, ec);
  if (ec) {
    // A host name: resolve it.
    tcp::resolver resolver(s.ioc);
    auto results = resolver.resolve(s.options.host, std::to_string(s.options.port), ec);
    if (ec || results.empty()) throw Error("cannot resolve host '" + s.options.host + "': " + ec.message());
    address = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(address, s.options.port);
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw Error("cannot listen on " + s.options.host + ":" + std::to_string(s.options.port) + ": " + ec.message());
  s.bound_port = s.acceptor.local_endpoint().port();
  s.accepting = true;
  s.work.emplace(s.ioc.get_executor());
  s.do_accept();
  const int n = std::max(1, s.options.io_threads);
  for (int i = 0; i < n; ++i)
    s.threads.emplace_back([&s] {
      for (;;) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {
          // A handler that threw: log it and keep serving.
          VLLM_LOG_ERROR("I/O thread: {}", e.what());
        }
      }
    });
}

uint16_t HttpServer::port() const { return impl_->bound_port; }

void HttpServer::stop_accepting() {
  Impl& s = *impl_;
  if (!s.accepting.exchange(false)) return;
  net::post(s.ioc, [&s] {
    error_code ignored;
    s.acceptor.close(ignored);
  });
}

int HttpServer::active_exchanges() const { return impl_->active.load(); }

void HttpServer::stop() {
  Impl& s = *impl_;
  if (s.threads.empty()) return;
  stop_accepting();
  {
    std::lock_guard<std::mutex> lock(s.sessions_mutex);
    for (auto& w : s.sessions)
      if (auto session = w.lock()) session->close();
    s.sessions.clear();
  }
  s.work.reset();
  // Give the closes a moment to run, then stop whatever is left (pending timers, reads).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (s.active.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  s.ioc.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
}

HttpReadResult read_http_requests(std::string_view bytes, const HttpServerOptions& options, size_t chunk) {
  HttpReadResult out;
  std::string buffer;  // received, not yet parsed (a connection's flat_buffer)
  size_t delivered = 0;
  auto receive = [&]() {
    if (delivered == bytes.size()) return false;
    const size_t n = chunk == 0 ? bytes.size() - delivered : std::min(chunk, bytes.size() - delivered);
    buffer.append(bytes.substr(delivered, n));
    delivered += n;
    return true;
  };
  while (true) {
    RequestParser parser;
    configure_parser(parser, options);
    parser.eager(true);
    error_code ec;
    // Beast's read loop: parse what is buffered, receive more when the parser needs it, and at
    // the end of the bytes tell the parser (the client closed).
    while (!parser.is_done()) {
      size_t used = 0;
      if (!buffer.empty()) {
        used = parser.put(net::buffer(buffer.data(), buffer.size()), ec);
        buffer.erase(0, used);
        if (ec == http::error::need_more) ec = {};
        if (ec || parser.is_done()) break;
      }
      if (used > 0) continue;
      if (!receive()) {
        if (!parser.got_some()) return out;  // closed between requests
        parser.put_eof(ec);
        if (!ec && !parser.is_done()) ec = http::error::partial_message;
        break;
      }
    }
    if (ec) {
      std::tie(out.error_status, out.error_message) = read_error_answer(ec, options);
      out.incomplete = out.error_status == 0;
      return out;
    }
    const bool keep_alive = parser.get().keep_alive();
    out.requests.push_back(to_http_request(parser.release()));
    if (!keep_alive) return out;
  }
}

}  // namespace vllm::server

#include "vllm/server/http_server.h"

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <list>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>

#include "vllm/core/error.h"
#include "vllm/core/logging.h"

namespace vllm::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
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
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::atomic<int> active{0};
  std::atomic<bool> accepting{false};
  uint16_t bound_port = 0;
  std::mutex sessions_mutex;
  std::list<std::weak_ptr<Session>> sessions;

  void do_accept();
};

// One connection. Everything here runs on the connection's strand (the socket's executor).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Impl& server) : stream_(std::move(socket)), server_(server) {}

  net::any_io_executor executor() { return stream_.get_executor(); }

  void run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

  void close() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->client_gone(); });
  }

  // --- called from Exchange, on the strand ---
  void send_response(Exchange& ex, HttpResponse r) {
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
    queue_.push_back(std::move(head));
    if (method_ != "HEAD") queue_.push_back(std::move(r.body));
    response_done_ = true;
    flush();
  }

  void start_stream(Exchange& ex, int status, const std::string& content_type, const Headers& headers) {
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
    queue_.push_back(std::move(head));
    flush();
  }

  void write(Exchange& ex, std::string data) {
    if (!accepts(ex) || !ex.started_ || response_done_ || data.empty()) return;
    if (chunked_) {
      queue_.push_back(hex(data.size()) + "\r\n");
      data += "\r\n";
    }
    queue_.push_back(std::move(data));
    flush();
  }

  void end_stream(Exchange& ex) {
    if (!accepts(ex) || !ex.started_ || response_done_) return;
    if (chunked_) queue_.push_back("0\r\n\r\n");
    response_done_ = true;
    flush();
  }

  void watch(Exchange& ex) {
    // Gone before anyone listened: client_gone() marked the exchange disconnected, so
    // on_disconnect() runs the callback at once; an exchange the session dropped is gone too.
    if (closed_ && current_.get() != &ex && !ex.complete_) ex.notify_disconnect();
  }

 private:
  void log_access(int status) {
    if (!server_.options.access_log) return;
    if (remote_.empty()) {
      error_code ec;
      auto ep = stream_.socket().remote_endpoint(ec);
      remote_ = ec ? std::string("-") : ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    VLLM_LOG_INFO("{} - \"{} {} HTTP/1.{}\" {} {}", remote_, method_.empty() ? "-" : method_, target_.empty() ? "-" : target_,
                  version_ == 10 ? 0 : 1, status, reason_phrase(status));
  }

  bool accepts(const Exchange& ex) const {
    return !closed_ && current_.get() == &ex && !ex.complete_ && !ex.disconnected_;
  }

  void do_read() {
    if (closed_) return;
    parser_.emplace();
    configure_parser(*parser_, server_.options);
    stream_.expires_after(std::chrono::milliseconds(static_cast<int64_t>(server_.options.idle_timeout_s * 1000)));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (ec) return on_read_error(ec);
    auto& msg = parser_->get();
    auto expect = msg.find(http::field::expect);
    if (expect != msg.end() && iequals(expect->value(), "100-continue") && !parser_->is_done()) {
      // curl asks before sending bodies over 1 KiB.
      auto interim = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      net::async_write(stream_.socket(), net::buffer(*interim),
                       [self = shared_from_this(), interim](error_code wec, size_t) {
                         if (wec) return self->client_gone();
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](error_code ec, size_t) {
      if (ec) return self->on_read_error(ec);
      self->on_request();
    });
  }

  void on_read_error(error_code ec) {
    auto [status, message] = read_error_answer(ec, server_.options);
    if (status != 0) return reject(status, message);
    client_gone();
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
    stream_.expires_never();
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

  // Notices a client that goes away while its response is pending: the socket turns readable
  // and a peek finds EOF (or an error). Readable data instead is a pipelined request, left for
  // the next read.
  void arm_monitor() {
    std::weak_ptr<Exchange> weak = current_;
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), weak](error_code ec) {
      auto ex = weak.lock();
      if (!ex || ex != self->current_ || ex->complete_ || self->closed_) return;
      if (ec) {
        if (ec != net::error::operation_aborted) self->client_gone();
        return;
      }
      char c;
      ssize_t n = ::recv(self->stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        self->client_gone();
      } else if (n < 0) {
        self->arm_monitor();  // spurious wake-up
      }
      // n > 0: pipelined bytes; stop watching (a write error still reports a disconnect).
    });
  }

  void flush() {
    if (writing_ || closed_ || queue_.empty()) return;
    writing_ = true;
    inflight_.swap(queue_);
    std::vector<net::const_buffer> bufs;
    bufs.reserve(inflight_.size());
    for (const auto& s : inflight_) bufs.push_back(net::buffer(s));
    net::async_write(stream_.socket(), bufs, [self = shared_from_this()](error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(error_code ec) {
    writing_ = false;
    inflight_.clear();
    if (ec) return client_gone();
    if (!queue_.empty()) return flush();
    if (response_done_ && current_) finish_response();
  }

  void finish_response() {
    current_->complete_ = true;
    current_.reset();
    if (counted_) server_.active.fetch_sub(1), counted_ = false;
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
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    closed_ = true;
    stream_.expires_after(std::chrono::seconds(5));
    drain();
  }

  void drain() {
    auto scratch = std::make_shared<std::array<char, 65536>>();
    stream_.async_read_some(net::buffer(*scratch), [self = shared_from_this(), scratch](error_code ec, size_t) {
      if (!ec) return self->drain();
      error_code ignored;
      self->stream_.socket().close(ignored);
    });
  }

  void client_gone() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    queue_.clear();
    if (current_) {
      auto ex = std::move(current_);  // breaks the session <-> exchange cycle
      if (counted_) server_.active.fetch_sub(1), counted_ = false;
      if (!ex->complete_) ex->notify_disconnect();
    }
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Exchange> current_;
  std::vector<std::string> queue_, inflight_;
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
      auto session = std::make_shared<Session>(std::move(socket), *this);
      {
        std::lock_guard<std::mutex> lock(sessions_mutex);
        if (sessions.size() > 256) sessions.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
        sessions.push_back(session);
      }
      session->run();
    }
    do_accept();
  });
}

HttpServer::HttpServer(HttpServerOptions options, Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  Impl& s = *impl_;
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

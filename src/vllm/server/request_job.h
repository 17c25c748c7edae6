// The engine side of one HTTP request: queues its engine requests, brings their outputs and
// errors back to the connection's strand (the engine thread only posts), and aborts them when
// the client goes away, so their KV blocks are freed within one engine step.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vllm/engine/data_parallel_engine.h"
#include "vllm/server/api_server.h"
#include "vllm/server/http_server.h"

namespace vllm::server {

class RequestJob : public std::enable_shared_from_this<RequestJob> {
 public:
  RequestJob(ServingContext& ctx, std::shared_ptr<Exchange> exchange) : ctx_(ctx), ex_(std::move(exchange)) {}
  virtual ~RequestJob() = default;

 protected:
  // Queues engine request `index` (outputs arrive through on_output(index, ...)). Call on the
  // strand, then watch_disconnect() once every request is queued.
  void submit(size_t index, std::string engine_id, std::vector<int32_t> prompt_ids, SamplingParams params,
              AddRequestOptions options);
  void watch_disconnect();
  // For streamed responses: pauses the engine requests while more than
  // --max-stream-buffer-bytes of this response wait unsent (a client that does not read), and
  // resumes them once the client has taken half of that. A client that takes nothing for
  // --stalled-client-timeout is disconnected (HttpServer), which aborts the requests.
  void watch_backpressure();
  // Aborts every engine request still running.
  void abort_all();
  // Strand only. A finished output marks its request done before on_output sees it.
  virtual void on_output(size_t index, RequestOutput&& out) = 0;
  // The first error ends the whole HTTP request: its other engine requests are aborted, and the
  // client gets an OpenAI error body, or an error event then [DONE] once streaming has begun.
  virtual void on_error(size_t index, const Error& e);

  ServingContext& ctx_;
  std::shared_ptr<Exchange> ex_;
  std::vector<std::string> engine_ids_;
  std::vector<bool> done_;
  bool failed_ = false;        // an error was sent: nothing more goes out
  bool headers_sent_ = false;  // a streamed response has begun

 private:
  void deliver(size_t index, RequestOutput&& out);
  void set_output_paused(bool paused);
  void fail(size_t index, const Error& e);
};

}  // namespace vllm::server

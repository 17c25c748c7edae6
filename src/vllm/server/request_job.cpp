#include "vllm/server/request_job.h"

#include "vllm/core/logging.h"
#include "vllm/server/errors.h"
#include "vllm/server/sse.h"

namespace vllm::server {

void RequestJob::submit(size_t index, std::string engine_id, std::vector<int32_t> prompt_ids, SamplingParams params,
                        AddRequestOptions options) {
  if (engine_ids_.size() <= index) {
    engine_ids_.resize(index + 1);
    done_.resize(index + 1, false);
  }
  engine_ids_[index] = engine_id;
  auto self = shared_from_this();
  // Both sinks run on the engine thread: they only hand the result to the connection's strand.
  auto on_output = [self, index](RequestOutput&& out) {
    self->ex_->post([self, index, out = std::move(out)]() mutable { self->deliver(index, std::move(out)); });
  };
  auto on_error = [self, index](const Error& e) {
    self->ex_->post([self, index, e] { self->fail(index, e); });
  };
  ctx_.engine.add_request(std::move(engine_id), PromptInput::from_ids(std::move(prompt_ids)), std::move(params),
                          options, std::move(on_output), std::move(on_error));
}

void RequestJob::watch_disconnect() {
  std::weak_ptr<RequestJob> weak = shared_from_this();
  ex_->on_disconnect([weak] {
    if (auto self = weak.lock()) {
      VLLM_LOG_DEBUG("client disconnected: aborting {} request(s)", self->engine_ids_.size());
      self->abort_all();
    }
  });
}

void RequestJob::watch_backpressure() {
  if (ctx_.config.max_stream_buffer_bytes == 0) return;
  std::weak_ptr<RequestJob> weak = shared_from_this();
  ex_->on_backpressure(ctx_.config.max_stream_buffer_bytes, [weak](bool full) {
    if (auto self = weak.lock()) self->set_output_paused(full);
  });
}

void RequestJob::set_output_paused(bool paused) {
  VLLM_LOG_DEBUG("{} {} request(s): the client {}", paused ? "pausing" : "resuming", engine_ids_.size(),
                 paused ? "is not reading" : "reads again");
  for (size_t i = 0; i < engine_ids_.size(); ++i)
    if (!done_[i] && !engine_ids_[i].empty()) ctx_.engine.set_output_paused(engine_ids_[i], paused);
}

void RequestJob::abort_all() {
  for (size_t i = 0; i < engine_ids_.size(); ++i)
    if (!done_[i] && !engine_ids_[i].empty()) {
      done_[i] = true;
      ctx_.engine.abort(engine_ids_[i]);
    }
}

void RequestJob::deliver(size_t index, RequestOutput&& out) {
  if (out.finished && index < done_.size()) done_[index] = true;
  try {
    on_output(index, std::move(out));
  } catch (const std::exception& e) {
    VLLM_LOG_ERROR("formatting the output of {} failed: {}", index < engine_ids_.size() ? engine_ids_[index] : "?",
                   e.what());
    on_error(index, Error(std::string("internal error: ") + e.what(), ErrorKind::kInternal));
  }
}

void RequestJob::on_error(size_t, const Error& e) {
  if (failed_ || ex_->disconnected()) return;
  failed_ = true;
  abort_all();
  ApiError err = api_error_from(e);
  if (headers_sent_) {
    ex_->write(error_event(err));
    ex_->write(sse_done());
    ex_->end_stream();
  } else {
    ex_->respond(error_response(err));
  }
}

void RequestJob::fail(size_t index, const Error& e) {
  if (index < done_.size()) done_[index] = true;
  on_error(index, e);
}

}  // namespace vllm::server

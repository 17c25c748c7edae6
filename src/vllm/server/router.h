// Routes requests to endpoint handlers by method and path, with what vLLM's middleware does
// around them: CORS (Starlette's CORSMiddleware rules, --allowed-origins/-methods/-headers),
// the API key check on /v1 routes (--api-key), X-Request-Id echoed back, 404 for unknown
// paths and 405 (with Allow) for a known path with the wrong method. Paths with a parameter
// (/v1/responses/{response_id}) are prefix routes.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vllm/server/http_server.h"

namespace vllm::server {

struct CorsOptions {
  std::vector<std::string> allowed_origins{"*"};
  std::vector<std::string> allowed_methods{"*"};
  std::vector<std::string> allowed_headers{"*"};
  bool allow_credentials = false;
};

class Router {
 public:
  using Route = std::function<void(HttpRequest&&, std::shared_ptr<Exchange>)>;

  Router(CorsOptions cors, std::vector<std::string> api_keys);
  void add(const std::string& method, const std::string& path, Route route);
  // A route for every path under `prefix` (a path parameter: the handler reads the rest of
  // req.path), tried when no exact path matches; `shown` names it in routes().
  void add_prefix(const std::string& method, const std::string& prefix, const std::string& shown, Route route);
  void handle(HttpRequest&& req, std::shared_ptr<Exchange> ex) const;
  // (path, methods) in the order added, for the start-up log.
  std::vector<std::pair<std::string, std::string>> routes() const;

 private:
  bool origin_allowed(const std::string& origin) const;
  void preflight(const HttpRequest& req, const std::shared_ptr<Exchange>& ex) const;
  bool authorized(const HttpRequest& req) const;

  CorsOptions cors_;
  std::vector<std::string> api_keys_;
  std::vector<std::string> order_;
  std::map<std::string, std::map<std::string, Route>> routes_;  // path -> method -> route
  std::map<std::string, std::map<std::string, Route>> prefix_routes_;  // prefix -> method -> route
  std::map<std::string, std::string> shown_;                          // prefix -> its name in routes()
};

}  // namespace vllm::server

#include "vllm/server/router.h"

#include <algorithm>

#include "vllm/server/errors.h"

namespace vllm::server {

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Constant-time comparison, so a key cannot be guessed byte by byte from response times.
bool same(const std::string& a, const std::string& b) {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

}  // namespace

Router::Router(CorsOptions cors, std::vector<std::string> api_keys) : cors_(std::move(cors)), api_keys_(std::move(api_keys)) {}

void Router::add(const std::string& method, const std::string& path, Route route) {
  if (!routes_.count(path)) order_.push_back(path);
  routes_[path][method] = std::move(route);
}

void Router::add_prefix(const std::string& method, const std::string& prefix, const std::string& shown, Route route) {
  if (!prefix_routes_.count(prefix)) order_.push_back(prefix);
  prefix_routes_[prefix][method] = std::move(route);
  shown_[prefix] = shown;
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& path : order_) {
    const bool prefix = !routes_.count(path);
    std::vector<std::string> methods;
    for (const auto& [m, _] : prefix ? prefix_routes_.at(path) : routes_.at(path)) methods.push_back(m);
    out.emplace_back(prefix ? shown_.at(path) : path, join(methods, ", "));
  }
  return out;
}

bool Router::origin_allowed(const std::string& origin) const {
  return contains(cors_.allowed_origins, "*") || contains(cors_.allowed_origins, origin);
}

void Router::preflight(const HttpRequest& req, const std::shared_ptr<Exchange>& ex) const {
  const std::string origin = req.header("origin").value_or("");
  const std::string method = upper(req.header("access-control-request-method").value_or(""));
  const std::string requested = req.header("access-control-request-headers").value_or("");
  HttpResponse r;
  r.content_type = "text/plain; charset=utf-8";
  const bool any_origin = contains(cors_.allowed_origins, "*");
  std::vector<std::string> failures;
  if (origin_allowed(origin)) {
    r.headers.emplace_back("access-control-allow-origin", any_origin && !cors_.allow_credentials ? "*" : origin);
  } else {
    failures.push_back("origin");
  }
  if (!any_origin) r.headers.emplace_back("vary", "Origin");
  const bool any_method = contains(cors_.allowed_methods, "*");
  r.headers.emplace_back("access-control-allow-methods",
                         any_method ? "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT" : join(cors_.allowed_methods, ", "));
  if (!any_method && !contains(cors_.allowed_methods, method)) failures.push_back("method");
  r.headers.emplace_back("access-control-max-age", "600");
  if (cors_.allow_credentials) r.headers.emplace_back("access-control-allow-credentials", "true");
  if (contains(cors_.allowed_headers, "*")) {
    if (!requested.empty()) r.headers.emplace_back("access-control-allow-headers", requested);
  } else {
    std::vector<std::string> allowed = {"Accept", "Accept-Language", "Content-Language", "Content-Type"};
    for (const auto& h : cors_.allowed_headers) allowed.push_back(h);
    r.headers.emplace_back("access-control-allow-headers", join(allowed, ", "));
  }
  if (failures.empty()) {
    r.status = 200;
    r.body = "OK";
  } else {
    r.status = 400;
    r.body = "Disallowed CORS " + join(failures, ", ");
  }
  ex->respond(std::move(r));
}

bool Router::authorized(const HttpRequest& req) const {
  if (api_keys_.empty()) return true;
  const std::string auth = req.header("authorization").value_or("");
  for (const auto& key : api_keys_)
    if (same(auth, "Bearer " + key)) return true;
  return false;
}

void Router::handle(HttpRequest&& req, std::shared_ptr<Exchange> ex) const {
  const auto origin = req.header("origin");
  // CORS preflight: answered before authentication (browsers send no credentials with it).
  if (req.method == "OPTIONS" && origin && req.header("access-control-request-method")) {
    preflight(req, ex);
    return;
  }
  if (origin && origin_allowed(*origin)) {
    const bool any_origin = contains(cors_.allowed_origins, "*");
    ex->add_header("access-control-allow-origin", any_origin && !cors_.allow_credentials ? "*" : *origin);
    if (cors_.allow_credentials) ex->add_header("access-control-allow-credentials", "true");
    if (!any_origin) ex->add_header("vary", "Origin");
  }
  if (auto id = req.header("x-request-id"); id && !id->empty()) ex->add_header("x-request-id", *id);
  if (req.method != "OPTIONS" && req.path.rfind("/v1", 0) == 0 && !authorized(req)) {
    ex->respond(error_response(ApiError("Unauthorized", std::nullopt, 401, "AuthenticationError")));
    return;
  }
  const std::map<std::string, Route>* methods_of = nullptr;
  auto it = routes_.find(req.path);
  if (it == routes_.end() && req.path.size() > 1 && req.path.back() == '/') it = routes_.find(req.path.substr(0, req.path.size() - 1));
  if (it != routes_.end()) {
    methods_of = &it->second;
  } else {
    // The longest prefix route with something after its prefix.
    size_t best = 0;
    for (const auto& [prefix, methods] : prefix_routes_)
      if (req.path.size() > prefix.size() && prefix.size() > best && req.path.compare(0, prefix.size(), prefix) == 0) {
        methods_of = &methods;
        best = prefix.size();
      }
  }
  if (!methods_of) {
    ex->respond(error_response(not_found("Not Found")));
    return;
  }
  auto route = methods_of->find(req.method);
  if (route == methods_of->end() && req.method == "HEAD") route = methods_of->find("GET");
  if (route == methods_of->end()) {
    std::vector<std::string> methods;
    for (const auto& [m, _] : *methods_of) methods.push_back(m);
    HttpResponse r = error_response(ApiError("Method Not Allowed", std::nullopt, 405, "MethodNotAllowedError"));
    r.headers.emplace_back("allow", join(methods, ", "));
    ex->respond(std::move(r));
    return;
  }
  route->second(std::move(req), std::move(ex));
}

}  // namespace vllm::server

// Renders a parsed template. One Renderer per render() call holds all mutable state (scopes,
// output, counters), which is what makes a shared ChatTemplate safe to render concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vllm/chat/ast.h"
#include "vllm/chat/value.h"

namespace vllm::jinja {

// Bounds on what one render may do, so that a hostile or buggy template fails with an error
// instead of exhausting the stack, memory or time.
inline constexpr int kMaxRenderDepth = 1000;               // nested evaluation, incl. macro calls
inline constexpr uint64_t kMaxLoopIterations = 10'000'000;  // over the whole render

// Variables of one scope. Jinja scopes are lexical: loop bodies, macros, with-blocks and
// block-sets see their parents' names, and their own assignments vanish when they end.
struct Scope {
  std::unordered_map<std::string, Value> vars;
  Scope* parent = nullptr;
  // A macro closes over this scope, so it must live until the render ends.
  bool captured = false;
};

class Renderer {
 public:
  explicit Renderer(const Template& tmpl) : tmpl_(tmpl) {}
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  // Renders with `context` (a dict) as the template's variables.
  std::string render(const Value& context);

  // ---- used by nodes and builtins ----------------------------------------------------------
  Value lookup(const std::string& name) const;
  void define(const std::string& name, Value v) { scope_->vars[name] = std::move(v); }
  void assign(const Target& target, Value v);
  Scope* scope() const { return scope_; }

  void write(std::string_view text);
  Flow exec_body(const Body& body);
  // Runs body with its output captured (in the current scope).
  std::string capture(const Body& body);
  void tick();  // one loop iteration; fails past kMaxLoopIterations

  Value call(const Value& callee, CallArgs& args);
  Value apply_filter(const std::string& name, Value v, CallArgs& args);
  bool apply_test(const std::string& name, const Value& v, CallArgs& args);
  Value apply_filters(const std::vector<FilterCall>& filters, Value v);
  CallArgs evaluate_args(const ArgList& args);

  // Runs a for loop over `iterable` at the given recursion depth (recursive loops re-enter).
  Flow run_loop(const ForStmt& stmt, const Value& iterable, int depth);
  // `loop(children)` inside a recursive loop: the loop body over children, as a string.
  Value render_recursive_loop(const ForStmt& stmt, const Value& iterable, int depth);
  Value call_macro(const MacroDef& def, Scope* closure, CallArgs& args);
  Value make_macro(const MacroDef& def);  // closes over the current scope

  // RAII: a child scope of `parent` (default: the current one) made current.
  class ScopeGuard {
   public:
    explicit ScopeGuard(Renderer& r, Scope* parent = nullptr);
    ~ScopeGuard();
    // Readies the scope for the next loop iteration: a fresh one if a macro captured it,
    // otherwise the same one with every name but `keep` removed (those are about to be
    // overwritten, so keeping their slots saves an allocation per iteration).
    void reset(const std::vector<std::string>& keep);
    ScopeGuard(const ScopeGuard&) = delete;
    ScopeGuard& operator=(const ScopeGuard&) = delete;

   private:
    void keep_if_captured();

    Renderer& r_;
    Scope* saved_;
    std::unique_ptr<Scope> scope_;
  };

  // RAII: one level of evaluation depth.
  class DepthGuard {
   public:
    explicit DepthGuard(Renderer& r);
    ~DepthGuard() { --r_.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Renderer& r_;
  };

 private:
  const Template& tmpl_;
  Scope globals_;  // range, namespace, raise_exception, ...
  Scope vars_;     // the render context and top-level assignments
  Scope* scope_ = nullptr;
  std::string* out_ = nullptr;
  int depth_ = 0;
  uint64_t iterations_ = 0;
  // Scopes that macros closed over, kept until the render ends.
  std::vector<std::unique_ptr<Scope>> kept_scopes_;
};

}  // namespace vllm::jinja

#include "vllm/chat/interpreter.h"

#include <algorithm>
#include <utility>

#include "vllm/chat/builtins.h"
#include "vllm/chat/errors.h"
#include "vllm/chat/operators.h"

namespace vllm::jinja {

namespace {

// Points the renderer's output at `buffer` until destroyed.
class OutputRedirect {
 public:
  OutputRedirect(std::string*& out, std::string* buffer) : out_(out), saved_(out) { out = buffer; }
  ~OutputRedirect() { out_ = saved_; }
  OutputRedirect(const OutputRedirect&) = delete;
  OutputRedirect& operator=(const OutputRedirect&) = delete;

 private:
  std::string*& out_;
  std::string* saved_;
};

// A macro (or a call block's `caller`) bound to the scope it was defined in.
class Macro : public Object {
 public:
  Macro(const MacroDef* def, Scope* closure) : def_(def), closure_(closure) {}
  std::string type_name() const override { return "Macro"; }
  std::string repr() const override { return "<Macro '" + def_->name + "'>"; }
  bool callable() const override { return true; }
  Value call(Renderer& r, CallArgs& args) override { return r.call_macro(*def_, closure_, args); }
  Value get_attr(const std::string& name) override {
    if (name == "name") return Value::string(def_->name);
    if (name == "arguments") {
      std::vector<Value> names;
      for (const auto& p : def_->params) names.push_back(Value::string(p));
      return Value::tuple(std::move(names));
    }
    if (name == "catch_kwargs") return Value::boolean(def_->uses_kwargs);
    if (name == "catch_varargs") return Value::boolean(def_->uses_varargs);
    if (name == "caller") return Value::boolean(def_->uses_caller);
    return Object::get_attr(name);
  }

 private:
  const MacroDef* def_;
  Scope* closure_;
};

// jinja2's LoopContext: the `loop` variable of a for loop.
class LoopContext : public Object, public std::enable_shared_from_this<LoopContext> {
 public:
  LoopContext(std::vector<Value> items, int depth0, const ForStmt* stmt)
      : items_(std::move(items)), depth0_(depth0), stmt_(stmt) {}

  std::string type_name() const override { return "LoopContext"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index0 + 1) + "/" + std::to_string(items_.size()) +
           ">";
  }
  bool callable() const override { return stmt_->recursive; }

  // loop(children) in a recursive loop renders the loop body over `children`, one level down.
  Value call(Renderer& r, CallArgs& args) override {
    if (!stmt_->recursive) {
      fail("the loop must be marked as 'recursive' to be called");
    }
    if (args.positional.size() != 1 || !args.keyword.empty()) {
      fail("loop() takes exactly one argument");
    }
    return r.render_recursive_loop(*stmt_, args.positional[0], depth0_ + 1);
  }

  Value get_attr(const std::string& name) override {
    const int64_t n = static_cast<int64_t>(items_.size());
    const int64_t i = static_cast<int64_t>(index0);
    if (name == "index") return Value::integer(i + 1);
    if (name == "index0") return Value::integer(i);
    if (name == "revindex") return Value::integer(n - i);
    if (name == "revindex0") return Value::integer(n - i - 1);
    if (name == "first") return Value::boolean(i == 0);
    if (name == "last") return Value::boolean(i == n - 1);
    if (name == "length") return Value::integer(n);
    if (name == "depth") return Value::integer(depth0_ + 1);
    if (name == "depth0") return Value::integer(depth0_);
    if (name == "previtem") {
      if (i > 0) return items_[index0 - 1];
      return Value::undefined("there is no previous item");
    }
    if (name == "nextitem") {
      if (i + 1 < n) return items_[index0 + 1];
      return Value::undefined("there is no next item");
    }
    if (name == "cycle") {
      auto self = shared_from_this();
      return Value::object(std::make_shared<Function>("cycle", [self](Renderer&, CallArgs& a) {
        if (a.positional.empty()) fail("no items for cycling given");
        return a.positional[self->index0 % a.positional.size()];
      }));
    }
    if (name == "changed") {
      auto self = shared_from_this();
      return Value::object(std::make_shared<Function>("changed", [self](Renderer&, CallArgs& a) {
        Value current = Value::tuple(a.positional);
        if (self->has_last_ && equals(self->last_changed_, current)) return Value::boolean(false);
        self->last_changed_ = std::move(current);
        self->has_last_ = true;
        return Value::boolean(true);
      }));
    }
    return Object::get_attr(name);
  }

  const std::vector<Value>& items() const { return items_; }
  size_t index0 = 0;

 private:
  std::vector<Value> items_;
  int depth0_;
  const ForStmt* stmt_;
  Value last_changed_;
  bool has_last_ = false;
};

}  // namespace

// ---- Renderer ------------------------------------------------------------------------------

Renderer::ScopeGuard::ScopeGuard(Renderer& r, Scope* parent)
    : r_(r), saved_(r.scope_), scope_(std::make_unique<Scope>()) {
  scope_->parent = parent ? parent : r.scope_;
  r.scope_ = scope_.get();
}

void Renderer::ScopeGuard::keep_if_captured() {
  if (!scope_->captured) return;
  try {
    r_.kept_scopes_.push_back(std::move(scope_));
  } catch (...) {
    (void)scope_.release();  // out of memory: leaking beats a dangling closure
  }
}

Renderer::ScopeGuard::~ScopeGuard() {
  r_.scope_ = saved_;
  keep_if_captured();
}

void Renderer::ScopeGuard::reset(const std::vector<std::string>& keep) {
  Scope* parent = scope_->parent;
  keep_if_captured();
  if (scope_) {
    auto& vars = scope_->vars;
    if (vars.size() > keep.size()) {
      for (auto it = vars.begin(); it != vars.end();) {
        if (std::find(keep.begin(), keep.end(), it->first) == keep.end()) {
          it = vars.erase(it);
        } else {
          ++it;
        }
      }
    }
  } else {
    scope_ = std::make_unique<Scope>();
    scope_->parent = parent;
  }
  r_.scope_ = scope_.get();
}

Renderer::DepthGuard::DepthGuard(Renderer& r) : r_(r) {
  if (++r_.depth_ > kMaxRenderDepth) {
    --r_.depth_;
    fail("maximum recursion depth exceeded");
  }
}

std::string Renderer::render(const Value& context) {
  install_globals(globals_);
  vars_.parent = &globals_;
  if (context.is_dict()) {
    for (const auto& [key, value] : context.as_dict().entries)
      if (key.is_string()) vars_.vars[key.as_string()] = value;
  }
  std::string out;
  scope_ = &vars_;
  out_ = &out;
  exec_body(tmpl_.body);
  out_ = nullptr;
  return out;
}

Value Renderer::lookup(const std::string& name) const {
  for (const Scope* s = scope_; s; s = s->parent) {
    auto it = s->vars.find(name);
    if (it != s->vars.end()) return it->second;
  }
  return Value::undefined("'" + name + "' is undefined");
}

void Renderer::assign(const Target& target, Value v) {
  switch (target.kind) {
    case Target::Kind::kName:
      define(target.name, std::move(v));
      return;
    case Target::Kind::kTuple: {
      std::vector<Value> items = iterate(v);
      const size_t want = target.items.size();
      if (items.size() > want) {
        fail("too many values to unpack (expected " + std::to_string(want) + ")");
      }
      if (items.size() < want) {
        fail("not enough values to unpack (expected " + std::to_string(want) + ", got " +
             std::to_string(items.size()) + ")");
      }
      for (size_t i = 0; i < want; ++i) assign(target.items[i], std::move(items[i]));
      return;
    }
    case Target::Kind::kAttribute: {
      Value ns = lookup(target.name);
      if (!ns.is_namespace()) fail("cannot assign attribute on non-namespace object");
      // A namespace that contained itself would never be freed (shared ownership).
      if (contains_container(v, ns.dict_ptr().get())) fail("cannot store a namespace inside itself");
      ns.as_dict().set(Value::string(target.attr), std::move(v));
      return;
    }
  }
}

void Renderer::write(std::string_view text) {
  if (out_->size() + text.size() > kMaxStringBytes) fail("rendered output is too large");
  out_->append(text);
}

Flow Renderer::exec_body(const Body& body) {
  for (const auto& stmt : body) {
    const Flow flow = stmt->execute(*this);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

std::string Renderer::capture(const Body& body) {
  std::string buffer;
  OutputRedirect redirect(out_, &buffer);
  exec_body(body);
  return buffer;
}

void Renderer::tick() {
  if (++iterations_ > kMaxLoopIterations) {
    fail("loop iteration limit exceeded (" + std::to_string(kMaxLoopIterations) +
         " iterations in one render)");
  }
}

Value Renderer::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) throw_undefined(callee);
  if (callee.is_object() && callee.as_object().callable()) return callee.as_object().call(*this, args);
  fail("'" + type_name(callee) + "' object is not callable");
}

Value Renderer::apply_filter(const std::string& name, Value v, CallArgs& args) {
  FilterFn fn = find_filter(name);
  if (!fn) fail("no filter named '" + name + "'");
  return fn(*this, v, args);
}

bool Renderer::apply_test(const std::string& name, const Value& v, CallArgs& args) {
  TestFn fn = find_test(name);
  if (!fn) fail("no test named '" + name + "'");
  return fn(*this, v, args);
}

Value Renderer::apply_filters(const std::vector<FilterCall>& filters, Value v) {
  for (const auto& f : filters) {
    try {
      CallArgs args = evaluate_args(f.args);
      if (!f.fn) fail("no filter named '" + f.name + "'");
      v = f.fn(*this, v, args);
    } catch (TemplateError& e) {
      if (e.line == 0) e.line = f.line;
      throw;
    }
  }
  return v;
}

CallArgs Renderer::evaluate_args(const ArgList& args) {
  CallArgs out;
  out.positional.reserve(args.positional.size());
  for (const auto& e : args.positional) out.positional.push_back(e->evaluate(*this));
  if (args.star) {
    for (auto& v : iterate(args.star->evaluate(*this))) out.positional.push_back(std::move(v));
  }
  for (const auto& [name, e] : args.keyword) out.keyword.emplace_back(name, e->evaluate(*this));
  if (args.star_star) {
    Value extra = args.star_star->evaluate(*this);
    if (!extra.is_mapping()) fail("argument after ** must be a mapping, not " + type_name(extra));
    for (const auto& [key, value] : extra.as_dict().entries) {
      if (!key.is_string()) fail("keywords must be strings");
      out.keyword.emplace_back(key.as_string(), value);
    }
  }
  return out;
}

namespace {

void target_names(const Target& target, std::vector<std::string>& out) {
  if (target.kind == Target::Kind::kTuple) {
    for (const auto& item : target.items) target_names(item, out);
  } else {
    out.push_back(target.name);
  }
}

}  // namespace

Flow Renderer::run_loop(const ForStmt& stmt, const Value& iterable, int depth) {
  std::vector<Value> items = iterate(iterable);
  // Names every iteration rebinds: the loop variables and `loop` itself.
  std::vector<std::string> rebound = {"loop"};
  target_names(stmt.target, rebound);
  if (stmt.condition) {
    // `for x in xs if cond`: loop.index/length/last count the kept items only.
    std::vector<Value> kept;
    ScopeGuard guard(*this);
    for (auto& item : items) {
      tick();
      guard.reset(rebound);
      assign(stmt.target, item);
      if (stmt.condition->evaluate(*this).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    if (stmt.else_body.empty()) return Flow::kNormal;
    ScopeGuard guard(*this);
    return exec_body(stmt.else_body);
  }
  auto loop = std::make_shared<LoopContext>(std::move(items), depth, &stmt);
  const Value loop_value = Value::object(loop);
  const size_t n = loop->items().size();
  ScopeGuard guard(*this);  // one scope per iteration, reused when nothing captured it
  for (size_t i = 0; i < n; ++i) {
    tick();
    if (i > 0) guard.reset(rebound);
    loop->index0 = i;
    define("loop", loop_value);
    assign(stmt.target, loop->items()[i]);
    if (exec_body(stmt.body) == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

Value Renderer::render_recursive_loop(const ForStmt& stmt, const Value& iterable, int depth) {
  DepthGuard guard(*this);
  std::string buffer;
  OutputRedirect redirect(out_, &buffer);
  run_loop(stmt, iterable, depth);
  return Value::string(std::move(buffer));
}

Value Renderer::make_macro(const MacroDef& def) {
  for (Scope* s = scope_; s && !s->captured; s = s->parent) s->captured = true;
  return Value::object(std::make_shared<Macro>(&def, scope_));
}

Value Renderer::call_macro(const MacroDef& def, Scope* closure, CallArgs& args) {
  DepthGuard depth_guard(*this);
  ScopeGuard scope_guard(*this, closure);
  const size_t n = def.params.size();
  std::vector<bool> given(n, false);
  std::vector<Value> extra;
  for (size_t i = 0; i < args.positional.size(); ++i) {
    if (i < n) {
      define(def.params[i], std::move(args.positional[i]));
      given[i] = true;
    } else {
      extra.push_back(std::move(args.positional[i]));
    }
  }
  if (!extra.empty() && !def.uses_varargs) {
    fail("macro '" + def.name + "' takes not more than " + std::to_string(n) + " argument(s)");
  }
  Value caller = Value::undefined("No caller defined");
  Value kwargs = Value::dict();
  for (auto& [key, value] : args.keyword) {
    size_t index = n;
    for (size_t i = 0; i < n; ++i)
      if (def.params[i] == key) index = i;
    if (index < n) {
      if (given[index]) {
        fail("macro '" + def.name + "' got multiple values for argument '" + key + "'");
      }
      define(key, std::move(value));
      given[index] = true;
    } else if (key == "caller" && def.uses_caller) {
      caller = std::move(value);
    } else if (def.uses_kwargs) {
      kwargs.as_dict().set(Value::string(key), std::move(value));
    } else {
      fail("macro '" + def.name + "' takes no keyword argument '" + key + "'");
    }
  }
  // Defaults are evaluated at call time inside the macro, so they may use earlier arguments.
  for (size_t i = 0; i < n; ++i) {
    if (given[i]) continue;
    if (def.defaults[i]) {
      define(def.params[i], def.defaults[i]->evaluate(*this));
    } else {
      define(def.params[i], Value::undefined("parameter '" + def.params[i] + "' was not provided"));
    }
  }
  if (def.uses_varargs) define("varargs", Value::tuple(std::move(extra)));
  if (def.uses_kwargs) define("kwargs", std::move(kwargs));
  if (def.uses_caller) define("caller", std::move(caller));
  return Value::string(capture(def.body));
}

// ---- expressions ---------------------------------------------------------------------------

Value Expr::evaluate(Renderer& r) const {
  Renderer::DepthGuard guard(r);
  try {
    return eval(r);
  } catch (TemplateError& e) {
    if (e.line == 0) e.line = line;
    throw;
  }
}

Value Literal::eval(Renderer&) const { return value; }

Value Name::eval(Renderer& r) const { return r.lookup(name); }

Value ListExpr::eval(Renderer& r) const {
  std::vector<Value> values;
  values.reserve(items.size());
  for (const auto& item : items) values.push_back(item->evaluate(r));
  return tuple ? Value::tuple(std::move(values)) : Value::list(std::move(values));
}

Value DictExpr::eval(Renderer& r) const {
  Value d = Value::dict();
  for (const auto& [key_expr, value_expr] : items) {
    Value key = key_expr->evaluate(r);
    if ((key.is_list() && !key.is_tuple()) || key.is_dict()) {
      fail("unhashable type: '" + type_name(key) + "'");
    }
    d.as_dict().set(std::move(key), value_expr->evaluate(r));
  }
  return d;
}

Value GetAttr::eval(Renderer& r) const { return get_attr(object->evaluate(r), name); }

Value GetItem::eval(Renderer& r) const {
  Value obj = object->evaluate(r);
  return get_item(obj, key->evaluate(r));
}

Value SliceExpr::eval(Renderer& r) const {
  Value obj = object->evaluate(r);
  Value a = start ? start->evaluate(r) : Value::none();
  Value b = stop ? stop->evaluate(r) : Value::none();
  Value c = step ? step->evaluate(r) : Value::none();
  return slice(obj, a, b, c);
}

Value Unary::eval(Renderer& r) const {
  Value v = operand->evaluate(r);
  if (op == UnaryOp::kNot) return Value::boolean(!v.truthy());
  return unary_op(op, v);
}

Value Binary::eval(Renderer& r) const {
  Value a = left->evaluate(r);
  Value b = right->evaluate(r);
  return binary_op(op, a, b);
}

Value Logical::eval(Renderer& r) const {
  // Python semantics: the result is an operand, not a bool.
  Value a = left->evaluate(r);
  if (is_and ? !a.truthy() : a.truthy()) return a;
  return right->evaluate(r);
}

Value Concat::eval(Renderer& r) const {
  std::string out;
  for (const auto& part : parts) {
    Value v = part->evaluate(r);
    if (v.is_string()) {
      if (out.size() + v.as_string().size() > kMaxStringBytes) fail("string is too large");
      out += v.as_string();
    } else {
      out += to_str(v);
    }
  }
  return Value::string(std::move(out));
}

Value Compare::eval(Renderer& r) const {
  Value left = first->evaluate(r);
  for (const auto& [op, expr] : rest) {
    Value right = expr->evaluate(r);
    if (!compare_op(op, left, right)) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

Value CondExpr::eval(Renderer& r) const {
  if (test->evaluate(r).truthy()) return then_expr->evaluate(r);
  if (else_expr) return else_expr->evaluate(r);
  return Value::undefined("the inline if-expression on line " + std::to_string(line) +
                          " evaluated to false and no else section was defined.");
}

Value Call::eval(Renderer& r) const {
  Value fn = callee->evaluate(r);
  CallArgs call_args = r.evaluate_args(args);
  return r.call(fn, call_args);
}

Value Filter::eval(Renderer& r) const {
  Value v = operand->evaluate(r);
  CallArgs call_args = r.evaluate_args(filter.args);
  if (!filter.fn) fail("no filter named '" + filter.name + "'");
  return filter.fn(r, v, call_args);
}

Value Test::eval(Renderer& r) const {
  Value v = operand->evaluate(r);
  CallArgs call_args = r.evaluate_args(args);
  if (!fn) fail("no test named '" + name + "'");
  return Value::boolean(fn(r, v, call_args));
}

// ---- statements ----------------------------------------------------------------------------

Flow Stmt::execute(Renderer& r) const {
  Renderer::DepthGuard guard(r);
  try {
    return exec(r);
  } catch (TemplateError& e) {
    if (e.line == 0) e.line = line;
    throw;
  }
}

Flow TextStmt::exec(Renderer& r) const {
  r.write(text);
  return Flow::kNormal;
}

Flow OutputStmt::exec(Renderer& r) const {
  Value v = expr->evaluate(r);
  if (v.is_string()) {
    r.write(v.as_string());
  } else {
    r.write(to_str(v));
  }
  return Flow::kNormal;
}

Flow IfStmt::exec(Renderer& r) const {
  for (const auto& [test, body] : branches)
    if (test->evaluate(r).truthy()) return r.exec_body(body);
  return r.exec_body(else_body);
}

Flow ForStmt::exec(Renderer& r) const { return r.run_loop(*this, iterable->evaluate(r), 0); }

Flow SetStmt::exec(Renderer& r) const {
  r.assign(target, value->evaluate(r));
  return Flow::kNormal;
}

Flow SetBlockStmt::exec(Renderer& r) const {
  std::string text;
  {
    Renderer::ScopeGuard guard(r);
    text = r.capture(body);
  }
  r.assign(target, r.apply_filters(filters, Value::string(std::move(text))));
  return Flow::kNormal;
}

Flow MacroStmt::exec(Renderer& r) const {
  r.define(def.name, r.make_macro(def));
  return Flow::kNormal;
}

Flow CallBlockStmt::exec(Renderer& r) const {
  Value caller_macro = r.make_macro(caller);
  Value fn = call->callee->evaluate(r);
  CallArgs args = r.evaluate_args(call->args);
  args.keyword.emplace_back("caller", std::move(caller_macro));
  r.write(to_str(r.call(fn, args)));
  return Flow::kNormal;
}

Flow FilterBlockStmt::exec(Renderer& r) const {
  std::string text;
  {
    Renderer::ScopeGuard guard(r);
    text = r.capture(body);
  }
  r.write(to_str(r.apply_filters(filters, Value::string(std::move(text)))));
  return Flow::kNormal;
}

Flow WithStmt::exec(Renderer& r) const {
  // Values are computed in the enclosing scope, then bound in the new one.
  std::vector<Value> values;
  values.reserve(assignments.size());
  for (const auto& [target, expr] : assignments) values.push_back(expr->evaluate(r));
  Renderer::ScopeGuard guard(r);
  for (size_t i = 0; i < assignments.size(); ++i)
    r.assign(assignments[i].first, std::move(values[i]));
  return r.exec_body(body);
}

Flow ScopeStmt::exec(Renderer& r) const {
  Renderer::ScopeGuard guard(r);
  return r.exec_body(body);
}

Flow LoopControlStmt::exec(Renderer&) const { return is_break ? Flow::kBreak : Flow::kContinue; }

Flow ExprStmt::exec(Renderer& r) const {
  expr->evaluate(r);
  return Flow::kNormal;
}

}  // namespace vllm::jinja

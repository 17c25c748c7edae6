// The parsed form of a template. Nodes are immutable once parsed, so one ChatTemplate can be
// rendered from many threads at once; all render state lives in the Renderer.
// The semantics of every node (eval/exec) live in interpreter.cpp.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vllm/chat/operators.h"
#include "vllm/chat/value.h"

namespace vllm::jinja {

class Renderer;

struct Node {
  virtual ~Node() = default;
  int line = 0;
  int depth = 1;  // height of the subtree; the parser bounds it
};

struct Expr : Node {
  // Evaluates under the renderer's recursion guard and stamps this node's line on any
  // TemplateError that leaves it without one.
  Value evaluate(Renderer& r) const;

 protected:
  virtual Value eval(Renderer& r) const = 0;
};
using ExprPtr = std::unique_ptr<Expr>;

struct ArgList {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
  ExprPtr star;       // *args
  ExprPtr star_star;  // **kwargs
};

using FilterFn = Value (*)(Renderer&, Value&, CallArgs&);
using TestFn = bool (*)(Renderer&, const Value&, CallArgs&);

// `|name(args)`. fn is null for names that are not filters: that fails when evaluated.
struct FilterCall {
  std::string name;
  FilterFn fn = nullptr;
  ArgList args;
  int line = 0;
};

struct Literal : Expr {
  Value value;  // scalars and strings only, so sharing it between threads is safe
  Value eval(Renderer& r) const override;
};

struct Name : Expr {
  std::string name;
  Value eval(Renderer& r) const override;
};

struct ListExpr : Expr {
  std::vector<ExprPtr> items;
  bool tuple = false;
  Value eval(Renderer& r) const override;
};

struct DictExpr : Expr {
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
  Value eval(Renderer& r) const override;
};

struct GetAttr : Expr {
  ExprPtr object;
  std::string name;
  Value eval(Renderer& r) const override;
};

struct GetItem : Expr {
  ExprPtr object;
  ExprPtr key;
  Value eval(Renderer& r) const override;
};

struct SliceExpr : Expr {
  ExprPtr object;
  ExprPtr start, stop, step;  // null when omitted
  Value eval(Renderer& r) const override;
};

struct Unary : Expr {
  UnaryOp op = UnaryOp::kNot;
  ExprPtr operand;
  Value eval(Renderer& r) const override;
};

struct Binary : Expr {
  BinaryOp op = BinaryOp::kAdd;
  ExprPtr left, right;
  Value eval(Renderer& r) const override;
};

struct Logical : Expr {
  bool is_and = true;
  ExprPtr left, right;
  Value eval(Renderer& r) const override;
};

struct Concat : Expr {  // a ~ b ~ c
  std::vector<ExprPtr> parts;
  Value eval(Renderer& r) const override;
};

struct Compare : Expr {  // chained, as in Python: a < b <= c
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> rest;
  Value eval(Renderer& r) const override;
};

struct CondExpr : Expr {  // then_expr if test else else_expr
  ExprPtr test, then_expr, else_expr;  // else_expr may be null
  Value eval(Renderer& r) const override;
};

struct Call : Expr {
  ExprPtr callee;
  ArgList args;
  Value eval(Renderer& r) const override;
};

struct Filter : Expr {
  ExprPtr operand;
  FilterCall filter;
  Value eval(Renderer& r) const override;
};

struct Test : Expr {
  ExprPtr operand;
  std::string name;
  TestFn fn = nullptr;
  ArgList args;
  Value eval(Renderer& r) const override;
};

// Left-hand sides of set/for/with: a name, a (nested) tuple of names, or namespace.attr.
struct Target {
  enum class Kind : uint8_t { kName, kTuple, kAttribute };
  Kind kind = Kind::kName;
  std::string name;  // the variable (for kAttribute: the namespace variable)
  std::string attr;
  std::vector<Target> items;
};

enum class Flow : uint8_t { kNormal, kBreak, kContinue };

struct Stmt : Node {
  Flow execute(Renderer& r) const;  // guard + line stamping, like Expr::evaluate

 protected:
  virtual Flow exec(Renderer& r) const = 0;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct TextStmt : Stmt {
  std::string text;
  Flow exec(Renderer& r) const override;
};

struct OutputStmt : Stmt {  // {{ expr }} and {% print expr %}
  ExprPtr expr;
  Flow exec(Renderer& r) const override;
};

struct IfStmt : Stmt {
  std::vector<std::pair<ExprPtr, Body>> branches;  // if + elifs
  Body else_body;
  Flow exec(Renderer& r) const override;
};

struct ForStmt : Stmt {
  Target target;
  ExprPtr iterable;
  ExprPtr condition;  // `for x in xs if cond`; may be null
  bool recursive = false;
  Body body;
  Body else_body;
  Flow exec(Renderer& r) const override;
};

struct SetStmt : Stmt {
  Target target;
  ExprPtr value;
  Flow exec(Renderer& r) const override;
};

struct SetBlockStmt : Stmt {  // {% set x | filters %}body{% endset %}
  Target target;
  std::vector<FilterCall> filters;
  Body body;
  Flow exec(Renderer& r) const override;
};

struct MacroDef {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // aligned with params; null where there is none
  Body body;
  int line = 0;
  // Whether the body mentions these names; as in Jinja, that decides whether extra
  // positional/keyword arguments and a caller are accepted.
  bool uses_varargs = false;
  bool uses_kwargs = false;
  bool uses_caller = false;
};

struct MacroStmt : Stmt {
  MacroDef def;
  Flow exec(Renderer& r) const override;
};

struct CallBlockStmt : Stmt {  // {% call(params) macro(args) %}body{% endcall %}
  MacroDef caller;
  std::unique_ptr<Call> call;
  Flow exec(Renderer& r) const override;
};

struct FilterBlockStmt : Stmt {  // {% filter f %}body{% endfilter %}
  std::vector<FilterCall> filters;
  Body body;
  Flow exec(Renderer& r) const override;
};

struct WithStmt : Stmt {
  std::vector<std::pair<Target, ExprPtr>> assignments;
  Body body;
  Flow exec(Renderer& r) const override;
};

struct ScopeStmt : Stmt {  // block, generation, autoescape: the body in its own scope
  Body body;
  Flow exec(Renderer& r) const override;
};

struct LoopControlStmt : Stmt {  // break / continue
  bool is_break = true;
  Flow exec(Renderer& r) const override;
};

struct ExprStmt : Stmt {  // {% do expr %}
  ExprPtr expr;
  Flow exec(Renderer& r) const override;
};

struct Template {
  Body body;
};

}  // namespace vllm::jinja

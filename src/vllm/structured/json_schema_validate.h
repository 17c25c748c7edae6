// Checks one JSON value against a schema, at compile time: it drops the enum/const values that
// a schema's other keywords exclude, and proves oneOf branches disjoint. Handles the keywords
// the compiler honours plus several it cannot put in a grammar but can check on a known value
// (multipleOf, not, if/then/else, contains, propertyNames, dependent*); throws like the
// compiler for the rest.
#pragma once

#include <vector>

#include "vllm/structured/json_schema_document.h"

namespace vllm::structured {

class SchemaValidator {
 public:
  explicit SchemaValidator(SchemaDocument& doc) : doc_(doc) {}
  bool valid(const ojson& value, const SchemaRef& schema, size_t depth = 0);
  bool valid_all(const ojson& value, const std::vector<SchemaRef>& schemas, size_t depth = 0);

 private:
  bool keyword_ok(const ojson& v, const ojson& schema, const std::string& key, const ojson& x,
                  const std::string& ptr, size_t depth);
  SchemaDocument& doc_;
};

}  // namespace vllm::structured

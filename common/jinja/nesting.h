// Counts one level of recursion for as long as it lives: the parser's and the interpreter's
// nesting bounds (docs/limits.md).
#ifndef G4SERVE_COMMON_JINJA_NESTING_H_
#define G4SERVE_COMMON_JINJA_NESTING_H_

namespace g4::jinja {

class Nested {
 public:
  explicit Nested(int* depth) : depth_(depth) { ++*depth_; }
  ~Nested() { --*depth_; }
  Nested(const Nested&) = delete;
  Nested& operator=(const Nested&) = delete;

 private:
  int* depth_;
};

}  // namespace g4::jinja

#endif  // G4SERVE_COMMON_JINJA_NESTING_H_

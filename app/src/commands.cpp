#include "commands.h"

#include <fstream>
#include <iostream>

namespace selffeed::app {

int fail(const Status& status) {
  std::cerr << "selffeed: " << status.to_string() << "\n";
  return 1;
}

Status write_report(const std::string& path, const std::string& text) {
  if (path.empty()) return ok_status();
  std::ofstream out(path);
  out << text << '\n';
  if (!out) return invalid_argument_error("cannot write '" + path + "'");
  return ok_status();
}

}  // namespace selffeed::app

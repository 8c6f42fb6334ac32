// The stdout / JSON-lines output on the module contract (pipeline/module.h): output "stdout writer",
// enabled by PGSTREAM_STDOUT_WRITER_ENABLED or a YAML target.stdout section.
#pragma once

namespace pgstream {

// Idempotent. Called by register_builtin_modules().
void register_stdout_module();

}  // namespace pgstream

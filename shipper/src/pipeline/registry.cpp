#include "pipeline/registry.h"

namespace pgstream {

namespace {
std::vector<OutputFactory>& outputs() {
    static std::vector<OutputFactory> list;
    return list;
}
std::vector<SourceFactory>& sources() {
    static std::vector<SourceFactory> list;
    return list;
}
}  // namespace

void register_output(OutputFactory factory) { outputs().push_back(std::move(factory)); }
void register_source(SourceFactory factory) { sources().push_back(std::move(factory)); }
const std::vector<OutputFactory>& registered_outputs() { return outputs(); }
const std::vector<SourceFactory>& registered_sources() { return sources(); }

}  // namespace pgstream

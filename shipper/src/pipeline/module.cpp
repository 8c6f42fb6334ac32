#include "pipeline/module.h"

#include <algorithm>

#include "kafka/kafka_modules.h"
#include "listener/postgres/postgres_source.h"
#include "processor/stdout/stdout_module.h"
#include "webhooks/webhook_module.h"

namespace pgstream {

namespace {

std::vector<OutputModule>& outputs() {
    static std::vector<OutputModule> list;
    return list;
}
std::vector<SourceModule>& sources() {
    static std::vector<SourceModule> list;
    return list;
}

template <typename Module>
bool add_once(std::vector<Module>& list, Module& module) {
    if (std::any_of(list.begin(), list.end(), [&](const Module& known) { return known.name == module.name; }))
        return false;
    std::vector<std::string> keys;
    for (const auto& setting : module.settings) keys.push_back(setting.key);
    register_config_keys(keys);
    if (module.yaml) register_yaml_section(*module.yaml);
    list.push_back(std::move(module));
    return true;
}

}  // namespace

void register_output_module(OutputModule module) {
    add_once(outputs(), module);
}
void register_source_module(SourceModule module) {
    add_once(sources(), module);
}
const std::vector<OutputModule>& registered_outputs() {
    return outputs();
}
const std::vector<SourceModule>& registered_sources() {
    return sources();
}

void register_builtin_modules() {
    register_postgres_source_module();
    kafka::register_kafka_modules();
    register_stdout_module();
    webhooks::register_webhook_module();
}

}  // namespace pgstream

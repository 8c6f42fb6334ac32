#include "kafka/record_key.h"

namespace pgstream::kafka {

std::string kafkaKey(const Event& event) {
    if (event.is_schema_log()) {
        // A schema change is ordered with the data of the schema it describes, not with pgstream's own
        // schema.
        if (const Column* schema_name = event.find_column("schema_name");
            schema_name != nullptr && schema_name->value.is_string()) {
            return schema_name->value.text;
        }
    }
    return event.schema;
}

}  // namespace pgstream::kafka

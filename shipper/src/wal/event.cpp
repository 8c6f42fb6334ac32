#include "wal/event.h"

namespace pgstream {

const Column* Event::find_column(const std::string& name) const {
    for (const auto& column : columns)
        if (column.name == name) return &column;
    return nullptr;
}

}  // namespace pgstream

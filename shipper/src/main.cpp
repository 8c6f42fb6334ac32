#include <cstdio>
int main() {
    std::fprintf(stderr, "pgstream: not implemented yet\n");
    return 2;
}

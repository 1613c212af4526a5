/* Debug-only invariant checks for _core (pgproto style). CEXNODE_DEBUG is set by setup.py. */
#ifndef CEXNODE_DEBUG_H
#define CEXNODE_DEBUG_H
#include <stdio.h>
#include <stdlib.h>
#ifndef CEXNODE_DEBUG
#define CEXNODE_DEBUG 0
#endif
#if CEXNODE_DEBUG
#define CEXNODE_ASSERT(cond) do { if (!(cond)) { \
    fprintf(stderr, "cexnode invariant failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
    abort(); } } while (0)
#else
#define CEXNODE_ASSERT(cond) ((void)0)
#endif
#endif

/* SPDX-License-Identifier: MIT */
/* Placeholder: being written. */
#include "unit.h"

int main(void)
{
    return 0;
}

#!/bin/sh
# Write a small multi-file C project to DIR: COUNT units (kprovfarm_NN.c), each heavy enough to
# compile that a parallel make keeps several distcc slots busy, a main.c that calls them all, and
# a Makefile that builds `farmtest` with $(CC). `farmtest` prints the sum the units compute.
#   farm-project.sh DIR COUNT
set -eu
dir=$1
count=$2
mkdir -p "$dir"
cd "$dir"
rm -f ./*.c ./*.o farmtest
i=1
while [ "$i" -le "$count" ]; do
  n=$(printf '%02d' "$i")
  {
    echo "/* kprov farm test unit $n */"
    f=0
    while [ "$f" -lt 60 ]; do
      echo "static unsigned long u${n}_f$f(unsigned long x) { unsigned long a = x;"
      echo "  for (int k = 0; k < 8; k++) { a = a * 2654435761UL + $f; a ^= a >> 13; }"
      echo "  return a % 1000; }"
      f=$((f + 1))
    done
    echo "unsigned long unit$n(void) { unsigned long s = 0;"
    f=0
    while [ "$f" -lt 60 ]; do
      echo "  s += u${n}_f$f($i) % 7;"
      f=$((f + 1))
    done
    echo "  return s; }"
  } > "kprovfarm_$n.c"
  i=$((i + 1))
done
{
  echo '#include <stdio.h>'
  i=1
  while [ "$i" -le "$count" ]; do echo "unsigned long unit$(printf '%02d' "$i")(void);"; i=$((i + 1)); done
  echo 'int main(void) { unsigned long s = 0;'
  i=1
  while [ "$i" -le "$count" ]; do echo "  s += unit$(printf '%02d' "$i")();"; i=$((i + 1)); done
  printf '%s\n' '  printf("farmtest %lu\n", s); return 0; }'
} > kprovfarm_main.c
cat > Makefile <<'MAKE'
SRCS := $(wildcard kprovfarm_*.c)
OBJS := $(SRCS:.c=.o)
CFLAGS ?= -O2
farmtest: $(OBJS)
	$(CC) -o $@ $(OBJS)
%.o: %.c
	$(CC) $(CFLAGS) -c $< -o $@
MAKE

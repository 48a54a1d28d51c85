cd "$(dirname "$0")/../../.."  # the repository root
for i in 1 2 3 4 5 6 7 8; do
  echo "A $(python benchmarks/results/process-spread/one_process.py 10)"
  echo "B $(MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864 python benchmarks/results/process-spread/one_process.py 10)"
done

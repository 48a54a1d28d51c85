cd "$(dirname "$0")/../../.."  # the repository root
M="MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864"
for i in 1 2 3 4 5 6; do
  echo "C $(env $M GLIBC_TUNABLES=glibc.malloc.hugetlb=1 python benchmarks/results/process-spread/one_process.py 10)"
  echo "D $(THP_MEM_ALLOC_ENABLE=1 python benchmarks/results/process-spread/one_process.py 10)"
done

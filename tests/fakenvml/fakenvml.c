/*
 * A fake NVIDIA driver for tests: built as libnvidia-ml.so.1 and found through
 * LD_LIBRARY_PATH, it exports the NVML entry points that nvidia-ml-py calls for
 * safedocker.gpu.detect_host, with answers taken from the environment:
 *
 *   FAKE_NVML_FAIL_INIT   driver_not_loaded | no_permission | unknown  (nvmlInit fails)
 *   FAKE_NVML_GPUS        number of GPUs (default 1, at most 64)
 *   FAKE_NVML_DRIVER      driver version (default 535.104.05)
 *   FAKE_NVML_CUDA        CUDA driver version as NVML encodes it (default 12020)
 *   FAKE_NVML_NAME        product name (default "NVIDIA A100-SXM4-80GB")
 *   FAKE_NVML_BRAND       NVML brand code (default 2, Tesla)
 *   FAKE_NVML_CC          compute capability MAJOR.MINOR (default 8.0)
 *   FAKE_NVML_MEMORY      total memory in bytes (default 80 GiB)
 *   FAKE_NVML_MEMORY_V2   0: nvmlDeviceGetMemoryInfo_v2 answers "function not found"
 *   FAKE_NVML_MIG         1: MIG on (current and pending); pending: only pending;
 *                         unsupported: NVML_ERROR_NOT_SUPPORTED; default off
 *
 * Return codes and struct layouts follow nvml.h; only what the tests need is here.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NO_PERMISSION 4
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_FUNCTION_NOT_FOUND 13
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25
#define NVML_ERROR_UNKNOWN 999

#define MAX_GPUS 64

struct fake_device {
        unsigned int index;
};

typedef struct fake_device *nvmlDevice_t;

typedef struct {
        unsigned long long total;
        unsigned long long free;
        unsigned long long used;
} nvmlMemory_t;

typedef struct {
        unsigned int version;
        unsigned long long total;
        unsigned long long reserved;
        unsigned long long free;
        unsigned long long used;
} nvmlMemory_v2_t;

#define NVML_STRUCT_VERSION(data, ver) (unsigned int)(sizeof(nvml##data##_v##ver##_t) | ((ver) << 24U))
#define nvmlMemory_v2 NVML_STRUCT_VERSION(Memory, 2)

static struct fake_device devices[MAX_GPUS];
static int init_count;

static const char *
setting(const char *name, const char *fallback)
{
        const char *value = getenv(name);
        return (value != NULL && *value != '\0') ? value : fallback;
}

static unsigned int
gpu_count(void)
{
        long n = strtol(setting("FAKE_NVML_GPUS", "1"), NULL, 10);
        if (n < 0)
                n = 0;
        if (n > MAX_GPUS)
                n = MAX_GPUS;
        return (unsigned int)n;
}

static nvmlReturn_t
copy_string(char *dst, unsigned int length, const char *src)
{
        if (dst == NULL)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (strlen(src) + 1 > length)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        memcpy(dst, src, strlen(src) + 1);
        return NVML_SUCCESS;
}

static nvmlReturn_t
check_device(nvmlDevice_t device)
{
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (device < &devices[0] || device >= &devices[gpu_count()])
                return NVML_ERROR_INVALID_ARGUMENT;
        return NVML_SUCCESS;
}

nvmlReturn_t
nvmlInitWithFlags(unsigned int flags)
{
        const char *fail = setting("FAKE_NVML_FAIL_INIT", "");

        (void)flags;
        if (strcmp(fail, "driver_not_loaded") == 0)
                return NVML_ERROR_DRIVER_NOT_LOADED;
        if (strcmp(fail, "no_permission") == 0)
                return NVML_ERROR_NO_PERMISSION;
        if (strcmp(fail, "unknown") == 0)
                return NVML_ERROR_UNKNOWN;
        for (unsigned int i = 0; i < MAX_GPUS; ++i)
                devices[i].index = i;
        ++init_count;
        return NVML_SUCCESS;
}

nvmlReturn_t
nvmlInit_v2(void)
{
        return nvmlInitWithFlags(0);
}

nvmlReturn_t
nvmlInit(void)
{
        return nvmlInitWithFlags(0);
}

nvmlReturn_t
nvmlShutdown(void)
{
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        --init_count;
        return NVML_SUCCESS;
}

const char *
nvmlErrorString(nvmlReturn_t result)
{
        switch (result) {
        case NVML_SUCCESS:
                return "Success";
        case NVML_ERROR_UNINITIALIZED:
                return "Uninitialized";
        case NVML_ERROR_INVALID_ARGUMENT:
                return "Invalid Argument";
        case NVML_ERROR_NOT_SUPPORTED:
                return "Not Supported";
        case NVML_ERROR_NO_PERMISSION:
                return "Insufficient Permissions";
        case NVML_ERROR_INSUFFICIENT_SIZE:
                return "Insufficient Size";
        case NVML_ERROR_DRIVER_NOT_LOADED:
                return "Driver Not Loaded";
        case NVML_ERROR_FUNCTION_NOT_FOUND:
                return "Function Not Found";
        case NVML_ERROR_ARGUMENT_VERSION_MISMATCH:
                return "Argument Version Mismatch";
        default:
                return "Unknown Error";
        }
}

nvmlReturn_t
nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        return copy_string(version, length, setting("FAKE_NVML_DRIVER", "535.104.05"));
}

nvmlReturn_t
nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion)
{
        if (cudaDriverVersion == NULL)
                return NVML_ERROR_INVALID_ARGUMENT;
        *cudaDriverVersion = (int)strtol(setting("FAKE_NVML_CUDA", "12020"), NULL, 10);
        return NVML_SUCCESS;
}

nvmlReturn_t
nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion)
{
        return nvmlSystemGetCudaDriverVersion_v2(cudaDriverVersion);
}

nvmlReturn_t
nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (deviceCount == NULL)
                return NVML_ERROR_INVALID_ARGUMENT;
        *deviceCount = gpu_count();
        return NVML_SUCCESS;
}

nvmlReturn_t
nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (device == NULL || index >= gpu_count())
                return NVML_ERROR_INVALID_ARGUMENT;
        *device = &devices[index];
        return NVML_SUCCESS;
}

nvmlReturn_t
nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
        nvmlReturn_t rv = check_device(device);
        if (rv != NVML_SUCCESS)
                return rv;
        return copy_string(name, length, setting("FAKE_NVML_NAME", "NVIDIA A100-SXM4-80GB"));
}

nvmlReturn_t
nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
        char buf[96];
        nvmlReturn_t rv = check_device(device);
        if (rv != NVML_SUCCESS)
                return rv;
        snprintf(buf, sizeof(buf), "GPU-fa4e0000-0000-4000-8000-%012x", device->index);
        return copy_string(uuid, length, buf);
}

static unsigned long long
memory_total(void)
{
        return strtoull(setting("FAKE_NVML_MEMORY", "85899345920"), NULL, 10);
}

nvmlReturn_t
nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
        nvmlReturn_t rv = check_device(device);
        if (rv != NVML_SUCCESS)
                return rv;
        if (memory == NULL)
                return NVML_ERROR_INVALID_ARGUMENT;
        memory->total = memory_total();
        memory->used = 0;
        memory->free = memory->total;
        return NVML_SUCCESS;
}

nvmlReturn_t
nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
        nvmlReturn_t rv = check_device(device);
        if (rv != NVML_SUCCESS)
                return rv;
        if (strcmp(setting("FAKE_NVML_MEMORY_V2", "1"), "0") == 0)
                return NVML_ERROR_FUNCTION_NOT_FOUND;
        if (memory == NULL)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (memory->version != nvmlMemory_v2)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        memory->total = memory_total();
        memory->reserved = 0;
        memory->used = 0;
        memory->free = memory->total;
        return NVML_SUCCESS;
}

nvmlReturn_t
nvmlDeviceGetBrand(nvmlDevice_t device, int *type)
{
        nvmlReturn_t rv = check_device(device);
        if (rv != NVML_SUCCESS)
                return rv;
        if (type == NULL)
                return NVML_ERROR_INVALID_ARGUMENT;
        *type = (int)strtol(setting("FAKE_NVML_BRAND", "2"), NULL, 10);
        return NVML_SUCCESS;
}

nvmlReturn_t
nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor)
{
        char *end;
        const char *cc = setting("FAKE_NVML_CC", "8.0");
        nvmlReturn_t rv = check_device(device);
        if (rv != NVML_SUCCESS)
                return rv;
        if (major == NULL || minor == NULL)
                return NVML_ERROR_INVALID_ARGUMENT;
        *major = (int)strtol(cc, &end, 10);
        *minor = (*end == '.') ? (int)strtol(end + 1, NULL, 10) : 0;
        return NVML_SUCCESS;
}

nvmlReturn_t
nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode)
{
        const char *mig = setting("FAKE_NVML_MIG", "0");
        nvmlReturn_t rv = check_device(device);
        if (rv != NVML_SUCCESS)
                return rv;
        if (currentMode == NULL || pendingMode == NULL)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (strcmp(mig, "unsupported") == 0)
                return NVML_ERROR_NOT_SUPPORTED;
        *currentMode = strcmp(mig, "1") == 0;
        *pendingMode = strcmp(mig, "1") == 0 || strcmp(mig, "pending") == 0;
        return NVML_SUCCESS;
}

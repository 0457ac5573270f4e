// Open MPI's C API for Swift. MPI_COMM_WORLD, MPI_BYTE, ... are macros over global objects that Swift cannot
// import, so small inline functions hand them over.
#ifndef MML_CMPI_SHIM_H
#define MML_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm mml_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype mml_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype mml_mpi_int64(void) { return MPI_INT64_T; }
static inline int mml_mpi_success(void) { return MPI_SUCCESS; }
static inline MPI_Errhandler mml_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
#endif

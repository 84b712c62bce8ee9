/**
 * What `git describe` said when the binary was built: `make build` compiles a staging copy of the
 * source in which this file says it. Undefined when eventsink runs from source.
 */
export const BUILD_DESCRIBE: string | undefined = undefined;

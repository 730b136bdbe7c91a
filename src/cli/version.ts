/** Replaced by build_distribution.sh's bundler define; from a checkout it reads as the dev version. */
declare const ZONECOPY_VERSION: string | undefined;
export const VERSION: string = typeof ZONECOPY_VERSION === 'string' ? ZONECOPY_VERSION : '0.1.0-dev';

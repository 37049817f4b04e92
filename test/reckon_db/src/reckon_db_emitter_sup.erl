%%% @doc Supervisor of the stand-in's emitters (one child per emitter).
-module(reckon_db_emitter_sup).
-behaviour(supervisor).
-export([start_link/0, init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Emitter = #{id => emitter, start => {reckon_db_emitter, start_link, []},
                restart => temporary},
    {ok, {#{strategy => simple_one_for_one, intensity => 10, period => 60}, [Emitter]}}.
